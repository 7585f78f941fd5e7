"""reset: a clone's data back to a snapshot at once (a rename of its ready copy).

The state it replaces is kept, so ``undo-reset`` can swap it back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.errors import ReproError
from workbench.model import SnapshotInfo
from workbench.names import check_snapshot_name
from workbench.ops.base import Operation, Progress
from workbench.ops.cleanup import services_down

if TYPE_CHECKING:
    from workbench.journal import Txn
    from workbench.workspace import Workspace


class Reset(Operation):
    name = "reset"
    uses_services = True
    summary = "reset a clone's data to a snapshot (default: the latest)"
    checks_after = True

    def __init__(self, ws: Workspace, env: str, snapshot: str | None = None, code: bool = False,
                 progress: Progress | None = None) -> None:
        super().__init__(ws, env, progress)
        ws.envs.require_clone(env, "reset")
        if snapshot is None:
            snaps = ws.state.snapshots(env)
            if not snaps:
                from workbench.errors import Refused

                raise Refused(f"{env} has no snapshot to reset to.", f"Take one: repro-tui snapshot {env}")
            self.target = snaps[-1]
        else:
            check_snapshot_name(snapshot)
            ws.envs.require_snapshot(env, snapshot)
            found = ws.state.snapshot(env, snapshot)
            assert found is not None
            self.target = found
        self.code = code

    def args(self) -> dict[str, Any]:
        return {"env": self.env, "snapshot": self.target.name, "id": self.target.id, "code": self.code}

    def check(self) -> None:
        self.ws.envs.require_clone(self.env, "reset")
        self.ws.envs.require_snapshot(self.env, self.target.name)

    def run(self, txn: Txn) -> SnapshotInfo:
        ws, env, target = self.ws, self.env, self.target
        with services_down(ws, env, txn, self.progress) as ctx:
            used_ready = True
            with txn.step("data swapped"):
                ws.backend.keep_undo_data(ctx, target.name, txn.progress)
                txn.note(undo_kept=True)
                for name, store in ws.stores.items():
                    used_ready = store.reset(env, target.name, target.id) and used_ready
                    txn.note(swapped=[*txn.args.get("swapped", []), name])
                ws.backend.reset_data(ctx, target.name)
            if self.code:
                tree = ws.state.snapshot_tree(env, target.name)
                if tree:
                    with txn.step("worktree restored"):
                        from workbench.vcs import Worktree

                        Worktree(ws.worktree(env)).restore_tree(tree)
            ws.state.update_env(env, last_reset=target.name)
            txn.message = "from the ready copy" if used_ready else "copied (no ready copy yet)"
        return target

    def after(self, result: SnapshotInfo) -> SnapshotInfo:
        self.ws.ready.spawn(self.env, result.name)
        return result

    @classmethod
    def undo(cls, ws: Workspace, args: dict[str, Any]) -> str:
        """A reset is finished, never rolled back: every store not yet swapped is swapped now,
        its services started again and the snapshot's ready copy made again."""
        env = args["env"]
        if ws.state.env(env) is None:
            return "rolled-back"
        snap = ws.state.snapshot(env, args["snapshot"])
        for name, store in ws.stores.items():
            if name in args.get("swapped", []):
                store.recover(env)
            elif not store.recover(env) and snap is not None:
                with ws.ready.lock(env):
                    store.reset(env, snap.name, snap.id)
        if snap is not None:
            ctx = ws.context(env)
            if not args.get("undo_kept"):
                ws.backend.drop_undo_data(ctx)  # cut off while copying: not an undo
            ws.backend.reset_data(ctx, snap.name)  # each volume copy starts by emptying its target
        if args.get("code") and snap is not None:
            tree = ws.state.snapshot_tree(env, snap.name)
            if tree:
                from workbench.vcs import Worktree

                Worktree(ws.worktree(env)).restore_tree(tree)
        ws.state.update_env(env, last_reset=args["snapshot"])
        if args.get("was_running"):
            try:
                ws.backend.start(ws.context(env))
            except ReproError:
                pass
        if snap is not None:   # the swap used up the snapshot's ready copy: make it again, as the reset would
            ws.ready.spawn(env, snap.name)
        return "completed-by-recovery"
