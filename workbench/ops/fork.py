"""fork: a new clone from prod (scrubbed), from a clone, or from a clone's snapshot.

Its own git branch and worktree, its own ports and services, its own copy of every
store; the first snapshot (``forked``) is the copy itself, before any service ran on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.drift import carried_message, carry
from workbench.environments import parse_ref
from workbench.errors import InvalidInput, NotFound, Refused
from workbench.model import EnvInfo
from workbench.names import FORKED, PROD, check_env_name
from workbench.ops.base import Operation, Progress
from workbench.ops.cleanup import BRANCH_PREFIX, clone_name, remove_env
from workbench.ops.snapshot import new_snapshot_id, take_snapshot
from workbench.state import current_user

if TYPE_CHECKING:
    from workbench.drift import Drift
    from workbench.journal import Txn
    from workbench.workspace import Workspace


class Fork(Operation):
    name = "fork"
    summary = "fork prod (or a clone, or CLONE@SNAPSHOT) into a new clone"
    checks_after = True

    def __init__(self, ws: Workspace, source: str, name: str, progress: Progress | None = None,
                 with_drift: bool = False) -> None:
        self.src_env, self.src_snap = parse_ref(source)
        super().__init__(ws, check_env_name(name, allow_prod=False), progress)
        if self.src_snap and self.src_env == PROD:
            raise InvalidInput("prod has no snapshots; fork prod itself, or a clone's snapshot (CLONE@SNAPSHOT).")
        if with_drift and source != PROD:
            raise InvalidInput("--with-drift gives the clone prod's live files and settings: fork prod with it.",
                               f"repro-tui fork prod {name} --with-drift")
        self.with_drift = with_drift
        self.drift: Drift | None = None
        self.source = source
        self.branch = BRANCH_PREFIX + name
        self.repo = ws.repo()
        self.start: str | None = None

    def args(self) -> dict[str, Any]:
        return {"source": self.source, "branch": self.branch, **({"with_drift": True} if self.with_drift else {})}

    def check(self) -> None:
        ws, name = self.ws, self.env
        if ws.state.env(name):
            raise Refused(f"a clone named {name!r} exists already.",
                          f"Choose another name, or destroy it first: repro-tui destroy {name}")
        if self.src_env != PROD and ws.state.env(self.src_env) is None:
            raise NotFound(f"cannot fork {self.source!r}: no environment named {self.src_env!r}.",
                           ws.envs.names_hint())
        if self.src_snap and ws.state.snapshot(self.src_env, self.src_snap) is None:
            raise NotFound(f"{self.src_env} has no snapshot named {self.src_snap!r}.",
                           f"See its snapshots: repro-tui snapshots {self.src_env}")
        if self.repo.branch_exists(self.branch):
            raise Refused(f"the branch {self.branch} exists already (left by an earlier clone, with commits prod "
                          "lacks).", f"Merge or delete it (git branch -D {self.branch}), or choose another name.")

    def prepare(self) -> None:
        ws = self.ws
        if self.src_env != PROD:
            return
        self.start = self.repo.rev(ws.spec.prod_branch)
        if self.start is None:
            raise Refused(f"prod's branch {ws.spec.prod_branch!r} does not exist (or has no commit).",
                          "Commit on it first, or set prod.branch in repro.yaml.")
        for st_name, store in ws.stores.items():
            store.check(ws.spec.scrub_rules(st_name))
        if self.with_drift:
            from workbench.drift import prod_drift

            self.drift = prod_drift(ws)

    def run(self, txn: Txn) -> None:
        ws, name = self.ws, self.env
        from_prod = self.src_env == PROD
        start, tree = self.start, None
        if not from_prod:
            from workbench.vcs import Worktree

            src_wt = Worktree(ws.worktree(self.src_env))
            tree = ws.state.snapshot_tree(self.src_env, self.src_snap) if self.src_snap else \
                src_wt.tree_commit("fork source")
            start = src_wt.git.rev_parse(f"{tree}^")
        assert start is not None
        txn.note(branch_created=True)
        with txn.step("worktree"):
            self.repo.add_worktree(ws.fence.worktree(name), self.branch, start)
            if tree:
                from workbench.vcs import Worktree

                Worktree(ws.worktree(name)).restore_tree(tree)
        if self.drift is not None:
            with txn.step("prod's drift carried"):
                txn.message = carried_message(*carry(ws, name, self.drift))
        ws.state.add_env(name, source=self.source, forked_commit=start, branch=self.branch, ports={},
                         status="forking")
        ws.state.update_env(name, owner=current_user()[0])
        avoid = ws.state.used_ports() | set(ws.context(PROD).ports.values())
        ws.state.update_env(name, ports=ws.backend.allocate_ports(ws.context(name), avoid))
        ctx = ws.context(name)
        with txn.step("services prepared"):
            ws.backend.create(ctx, txn.progress, source=None if from_prod else self.src_env,
                              source_snapshot=self.src_snap)
        for st_name, store in ws.stores.items():
            rules = ws.spec.scrub_rules(st_name) if from_prod else []
            with txn.step(f"copy {st_name}" + (" + scrub" if rules else "")):
                store.fork(name, None if from_prod else self.src_env, self.src_snap, rules, txn.progress)
        with txn.step("snapshot forked"):
            take_snapshot(ws, name, FORKED, new_snapshot_id(), first=True)
        with txn.step("services started"):
            ws.backend.start(ctx, txn.progress)
        ws.state.update_env(name, status="ok")

    def after(self, result: Any) -> EnvInfo:
        self.ws.ready.spawn(self.env, FORKED)
        info = self.ws.status(self.env)
        info.notes = self.ws.envs.egress_lines(self.env)
        return info

    @classmethod
    def undo(cls, ws: Workspace, args: dict[str, Any]) -> str:
        name = clone_name(args.get("branch", ""))
        if not name:
            return "failed"
        remove_env(ws, name, delete_branch=bool(args.get("branch_created")), only_if_merged=False)
        return "rolled-back"
