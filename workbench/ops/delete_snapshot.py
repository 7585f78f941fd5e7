"""delete-snapshot: a snapshot's copies deleted and the snapshot forgotten."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.errors import Refused
from workbench.names import FORKED, check_snapshot_name
from workbench.ops.base import Operation, Progress
from workbench.ops.cleanup import drop_snapshot

if TYPE_CHECKING:
    from workbench.journal import Txn
    from workbench.workspace import Workspace


class DeleteSnapshot(Operation):
    name = "delete-snapshot"
    summary = "delete one of a clone's snapshots"

    def __init__(self, ws: Workspace, env: str, snapshot: str, progress: Progress | None = None) -> None:
        super().__init__(ws, env, progress)
        ws.envs.require_clone(env, "deleting a snapshot")
        self.snapshot = check_snapshot_name(snapshot)
        ws.envs.require_snapshot(env, snapshot)
        if snapshot == FORKED:
            raise Refused(f"'{FORKED}' is the state {env} was forked in; it is kept for as long as the clone.",
                          "Delete other snapshots, or destroy the clone.")

    def args(self) -> dict[str, Any]:
        return {"env": self.env, "snapshot": self.snapshot}

    def check(self) -> None:
        self.ws.envs.require_clone(self.env, "deleting a snapshot")
        self.ws.envs.require_snapshot(self.env, self.snapshot)

    def run(self, txn: Txn) -> None:
        drop_snapshot(self.ws, self.env, self.snapshot, txn)

    @classmethod
    def undo(cls, ws: Workspace, args: dict[str, Any]) -> str:
        drop_snapshot(ws, args["env"], args["snapshot"])
        return "completed-by-recovery"
