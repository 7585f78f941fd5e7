"""What several operations and their undos share: removing a clone, dropping a snapshot
(both idempotent: recovery runs them again on whatever a cut-off run left behind), and
holding a clone's services down while its data is swapped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

from workbench.backends.base import EnvContext
from workbench.errors import ReproError
from workbench.journal import no_step

if TYPE_CHECKING:
    from workbench.journal import Progress, Txn
    from workbench.workspace import Workspace

BRANCH_PREFIX = "repro/"

Step = Callable[[str], AbstractContextManager[None]]


def _step(txn: Txn | None) -> Step:
    return txn.step if txn is not None else no_step


def remove_env(ws: Workspace, env: str, delete_branch: bool, only_if_merged: bool,
               txn: Txn | None = None) -> list[str]:
    """Remove a clone's services, data, snapshots, worktree (and branch). Returns notes for
    the user (a branch kept because it has commits prod's branch lacks)."""
    notes = []
    fence = ws.fence
    row = ws.state.env(env)
    step = _step(txn)
    if row is not None or ws.run_dir(env).exists():
        with step("services removed"):
            try:
                ctx = ws.context(env) if row is not None else None
            except ReproError:
                ctx = None
            if ctx is None:
                ctx = EnvContext(name=env, kind="clone", worktree=ws.worktree(env), run_dir=ws.run_dir(env),
                                 services=ws.spec.services)
            ws.backend.destroy(ctx)
    with ws.ready.lock(env):
        with step("data removed"):
            for store in ws.stores.values():
                store.destroy(env)
            for sub in ("data", "snapshots", "ready", "undo"):
                fence.rmtree(env, ws.repro_dir / sub / env)
    repo = ws.repo()
    branch = BRANCH_PREFIX + env
    with step("worktree removed"):
        # every ref under the clone's prefix: a snapshot cut off before it was recorded has one too
        for ref in repo.refs_under(f"refs/repro/{env}/"):
            repo.delete_ref(ref)
        repo.remove_worktree(fence.worktree(env))
        if delete_branch and repo.branch_exists(branch):
            ahead = repo.commits_not_in(branch, ws.spec.prod_branch) if only_if_merged else 0
            if ahead:
                notes.append(f"kept the branch {branch}: it has {ahead} commit(s) that "
                             f"{ws.spec.prod_branch} lacks (git branch -D {branch} to drop it).")
            else:
                repo.delete_branch(branch)
    fence.rmtree(env, ws.run_dir(env))
    (ws.repro_dir / "ready" / f"{env}.lock").unlink(missing_ok=True)
    ws.state.remove_env(env)
    return notes


def drop_snapshot(ws: Workspace, env: str, name: str, txn: Txn | None = None) -> str:
    """Forget a snapshot and delete its copies (data, backend volumes, its worktree ref)."""
    step = _step(txn)
    with ws.ready.lock(env):
        with step("snapshot data deleted"):
            for store in ws.stores.values():
                store.delete_snapshot(env, name)
            if ws.state.env(env) is not None:
                ws.backend.delete_snapshot_data(ws.context(env), name)
        with step("snapshot forgotten"):
            if ws.worktree(env).exists():
                ws.repo().delete_ref(f"refs/repro/{env}/{name}")
            ws.state.remove_snapshot(env, name)
            ws.fence.rmtree(env, ws.repro_dir / "snapshots" / env / name)
    return "rolled-back"


def clone_name(branch: str) -> str:
    return branch[len(BRANCH_PREFIX):] if branch.startswith(BRANCH_PREFIX) else ""





@contextmanager
def services_down(ws: Workspace, env: str, txn: Txn, progress: Progress | None) -> Iterator[EnvContext]:
    """Under the clone's ready lock, stop what must not run while its data is swapped (a
    database server that swaps databases inside itself keeps running), and start what ran
    again once the block is done. Whether they ran is noted first, for recovery."""
    ctx = ws.context(env)
    with ws.ready.lock(env, progress):
        was_running = any(s.state == "running" for s in ws.backend.status(ctx).values())
        txn.note(was_running=was_running)
        with txn.step("services stopped"):
            ws.backend.stop_for_reset(ctx)
        yield ctx
        if was_running:
            with txn.step("services started"):
                ws.backend.start(ws.context(env), txn.progress)
