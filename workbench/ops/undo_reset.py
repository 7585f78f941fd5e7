"""undo-reset: back to the state the last reset replaced (pressed again, it redoes it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.errors import Refused, ReproError
from workbench.ops.base import Operation, Progress
from workbench.ops.cleanup import services_down
from workbench.owners import last_swap, undo_refusal, who

if TYPE_CHECKING:
    from workbench.journal import Txn
    from workbench.workspace import Workspace


class UndoReset(Operation):
    name = "undo-reset"
    uses_services = True
    summary = "go back to the state the last reset replaced"
    checks_after = True

    def __init__(self, ws: Workspace, env: str, progress: Progress | None = None) -> None:
        super().__init__(ws, env, progress)
        ws.envs.require_clone(env, "undoing a reset")
        backend_undo = ws.backend.has_undo_data(ws.context(env))
        stores = ws.stores.values()
        if (not stores and backend_undo is None) or not all(s.has_undo(env) for s in stores) \
                or backend_undo is False:
            raise Refused(f"{env} has no reset to undo.", "A reset keeps the state it replaced; none was made yet.")

    def check(self) -> None:
        """Also under the lock: a reset by someone else that ran while this undo waited for
        the lock is not taken back (it is theirs)."""
        self.ws.envs.require_clone(self.env, "undoing a reset")
        last = last_swap(self.ws.state, self.env)
        if last is not None:
            refusal = undo_refusal(self.env, who(last), last.finished_at or last.started_at, self.ws.clock())
            if refusal is not None:
                raise refusal

    def run(self, txn: Txn) -> None:
        ws, env = self.ws, self.env
        with services_down(ws, env, txn, self.progress) as ctx, txn.step("data swapped"):
            for store in ws.stores.values():
                store.undo_reset(env)
            ws.backend.undo_data(ctx, note=lambda stage: txn.note(volumes=stage), progress=txn.progress)

    @classmethod
    def undo(cls, ws: Workspace, args: dict[str, Any]) -> str:
        env = args["env"]
        for store in ws.stores.values():
            store.recover(env)
        if ws.state.env(env) is not None:
            if args.get("volumes"):  # finish swapping the volumes from the last stage the undo recorded
                ws.backend.undo_data(ws.context(env), done=args["volumes"])
            else:  # cut off before the volumes' first stage: their swap copies are half-made
                ws.backend.drop_undo_data(ws.context(env), swap_only=True)
        if args.get("was_running") and ws.state.env(env) is not None:
            try:  # the undo stopped them: a cut-off undo must not leave the clone down
                ws.backend.start(ws.context(env))
            except ReproError:
                pass
        return "completed-by-recovery"
