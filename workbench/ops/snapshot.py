"""snapshot: an immutable point of a clone's data and worktree, to reset to."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from workbench.errors import Refused
from workbench.model import SnapshotInfo
from workbench.names import check_snapshot_name, first_free
from workbench.ops.base import Operation, Progress
from workbench.ops.cleanup import drop_snapshot

if TYPE_CHECKING:
    from workbench.journal import Txn
    from workbench.workspace import Workspace


def new_snapshot_id() -> str:
    return uuid.uuid4().hex[:12]


def take_snapshot(ws: Workspace, env: str, name: str, sid: str, first: bool = False) -> None:
    """Copy the clone's data into snapshot ``name`` and keep its worktree as a tree commit."""
    from workbench.vcs import Worktree

    wt = Worktree(ws.worktree(env))
    commit, dirty = wt.head(), wt.is_dirty()
    tree = wt.tree_commit(f"repro-tui snapshot {env}@{name}")
    wt.keep_ref(f"refs/repro/{env}/{name}", tree)
    for store in ws.stores.values():
        if first:  # a fork's: no service has run on the copy yet
            store.first_snapshot(env, name)
        else:
            store.snapshot(env, name)
    ws.backend.snapshot_data(ws.context(env), name)
    ws.state.add_snapshot(env, name, sid, commit, tree, dirty)


class Snapshot(Operation):
    name = "snapshot"
    uses_services = True
    summary = "snapshot a clone's data and worktree"

    def __init__(self, ws: Workspace, env: str, snapshot: str | None = None, progress: Progress | None = None) -> None:
        super().__init__(ws, env, progress)
        ws.envs.require_clone(env, "snapshot")
        if snapshot is None:
            snapshot = first_free("s", {s.name for s in ws.state.snapshots(env)})
        self.snapshot = check_snapshot_name(snapshot, allow_reserved=False)
        self.id = new_snapshot_id()

    def args(self) -> dict[str, Any]:
        return {"env": self.env, "snapshot": self.snapshot, "id": self.id}

    def check(self) -> None:
        self.ws.envs.require_clone(self.env, "snapshot")
        if self.ws.state.snapshot(self.env, self.snapshot):
            raise Refused(f"{self.env} has a snapshot named {self.snapshot!r} already.",
                          f"Choose another name, or delete it: repro-tui snapshot {self.env} --delete {self.snapshot}")

    def run(self, txn: Txn) -> None:
        with txn.step(f"snapshot {self.snapshot}"):
            take_snapshot(self.ws, self.env, self.snapshot, self.id)

    def after(self, result: Any) -> SnapshotInfo:
        self.ws.ready.spawn(self.env, self.snapshot)
        snap = self.ws.state.snapshot(self.env, self.snapshot)
        assert snap is not None
        snap.size = sum(st.size(self.env, self.snapshot) for st in self.ws.stores.values())
        return snap

    @classmethod
    def undo(cls, ws: Workspace, args: dict[str, Any]) -> str:
        env = args.get("env")
        return drop_snapshot(ws, env, args["snapshot"]) if env else "failed"
