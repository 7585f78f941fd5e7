"""start: an environment's services started and waited for until healthy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.model import EnvInfo
from workbench.ops.base import Operation, Progress

if TYPE_CHECKING:
    from workbench.journal import Txn
    from workbench.workspace import Workspace


class Start(Operation):
    name = "start"
    uses_services = True
    summary = "start an environment's services"
    checks_after = True

    def __init__(self, ws: Workspace, env: str, progress: Progress | None = None) -> None:
        super().__init__(ws, env, progress)
        ws.envs.check_service_control(env, self.name)

    def run(self, txn: Txn) -> None:
        self.ws.backend.start(self.ws.context(self.env), self.progress)

    def after(self, result: Any) -> EnvInfo:
        return self.ws.status(self.env)
