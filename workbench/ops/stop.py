"""stop: an environment's services stopped (TERM, then KILL after their grace period)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.ops.start import Start

if TYPE_CHECKING:
    from workbench.journal import Txn


class Stop(Start):
    """The same checks as start (prod only on the local backend); the opposite call."""

    name = "stop"
    summary = "stop an environment's services"
    checks_after = False

    def run(self, txn: Txn) -> None:
        self.ws.backend.stop(self.ws.context(self.env), self.progress)
