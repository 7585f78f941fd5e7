"""destroy: a clone's services, worktree, data and snapshots removed (its branch kept when
it has commits prod's branch lacks). A cut-off destroy is finished by recovery."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.errors import Refused
from workbench.ops.base import Operation, Progress
from workbench.ops.cleanup import remove_env

if TYPE_CHECKING:
    from workbench.journal import Txn
    from workbench.workspace import Workspace


class Destroy(Operation):
    name = "destroy"
    summary = "remove a clone: services, worktree, data and snapshots"

    def __init__(self, ws: Workspace, env: str, force: bool = False, progress: Progress | None = None) -> None:
        super().__init__(ws, env, progress)
        row = ws.envs.require_clone(env, "destroy")
        self.branch = row["branch"]
        if ws.worktree(env).exists() and not force:
            from workbench.vcs import Worktree

            try:
                changed = Worktree(ws.worktree(env)).changed_files()
            except Exception:  # noqa: BLE001 - a broken worktree is destroyed all the same
                changed = []
            if changed:
                shown = ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else "")
                raise Refused(f"{env} has uncommitted changes: {shown}.",
                              f"Promote them (repro-tui promote {env} -m ...), or destroy with --force to lose them.")

    def args(self) -> dict[str, Any]:
        return {"env": self.env, "branch": self.branch}

    def check(self) -> None:
        self.ws.envs.require_clone(self.env, "destroy")

    def run(self, txn: Txn) -> list[str]:
        self.ws.state.update_env(self.env, status="destroying")
        return remove_env(self.ws, self.env, delete_branch=True, only_if_merged=True, txn=txn)

    @classmethod
    def undo(cls, ws: Workspace, args: dict[str, Any]) -> str:
        remove_env(ws, args["env"], delete_branch=True, only_if_merged=True)
        return "completed-by-recovery"
