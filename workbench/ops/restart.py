"""restart: an environment's services stopped and started again, so that they read what
their worktree says now (a config file or repro.yaml changed since they started)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.errors import ReproError
from workbench.ops.start import Start

if TYPE_CHECKING:
    from workbench.journal import Txn
    from workbench.model import JournalEntry
    from workbench.workspace import Workspace


class Restart(Start):
    """The same checks and result as start (prod only on the local backend); stop, then start."""

    name = "restart"
    summary = "stop and start an environment's services"

    def run(self, txn: Txn) -> None:
        backend = self.ws.backend
        with txn.step("services stopped"):
            backend.stop(self.ws.context(self.env), self.progress)
        with txn.step("services started"):
            try:   # the context again: the restart is for a changed repro.yaml too
                backend.start(self.ws.context(self.env), self.progress)
            except ReproError:
                txn.note(start_failed=True)   # said to the user; recovery would only fail the same way
                raise

    @classmethod
    def undo(cls, ws: Workspace, args: dict[str, Any]) -> str:
        """Finished: the services are started (those still running are left as they are)."""
        if args.get("start_failed"):
            return "failed"
        try:
            ws.backend.start(ws.context(args["env"]))
        except ReproError:
            return "failed"
        return "completed-by-recovery"

    @classmethod
    def recovered_message(cls, entry: JournalEntry) -> str:
        return "the restart was cut off; its services were started by the next command"
