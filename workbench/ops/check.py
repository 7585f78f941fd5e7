"""check: run the checks of repro.yaml on an environment, and on prod beside it.

Prod is probed too (GET and HEAD only), so that a clone's result always has prod's beside
it: "reproduces: 500 on prod and bug1". Every result is kept in the state, with the
journal entry that made it. The journal runs this row after every fork, reset and start
(see ``Operation.checks_after``), and the user runs it from a key or ``repro-tui check``.
Nothing to undo: the results kept are facts, even of a run cut off half way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.check_results import CheckResult, judge, latest_by
from workbench.errors import NotFound, Refused
from workbench.names import PROD, check_env_name
from workbench.ops.base import Operation, Progress

if TYPE_CHECKING:
    from workbench.journal import Txn
    from workbench.workspace import Workspace


class Check(Operation):
    name = "check"
    uses_services = True
    summary = "run repro.yaml's checks on an environment, and on prod beside it"

    def __init__(self, ws: Workspace, env: str, names: list[str] | None = None, trigger: str = "cli",
                 progress: Progress | None = None) -> None:
        super().__init__(ws, check_env_name(env), progress)
        declared = ws.spec.checks
        if not declared:
            raise Refused("repro.yaml declares no check.",
                          "Add a 'checks:' section, e.g. checks: {order-1042: {http: GET /orders/1042, "
                          "expect: {status: 200}}} (README, section Checks).")
        for n in names or []:
            if n not in declared:
                raise NotFound(f"no check named {n!r}.", f"Checks in repro.yaml: {', '.join(declared)}")
        self.names = list(names or declared)
        self.trigger = trigger

    def args(self) -> dict[str, Any]:
        return {"env": self.env, "checks": self.names, "trigger": self.trigger}

    def check(self) -> None:
        if self.env != PROD and self.ws.state.env(self.env) is None:
            raise NotFound(f"no environment named {self.env!r}.", self.ws.envs.names_hint())

    def run(self, txn: Txn) -> list[CheckResult]:
        from workbench.checks import CheckRunner

        ws = self.ws
        runner = CheckRunner(ws)
        checks = [ws.spec.checks[n] for n in self.names]
        results: list[CheckResult] = []
        for target in [self.env] if self.env == PROD else [self.env, PROD]:
            mine = checks if target == self.env else [c for c in checks if c.on_prod]
            if not mine:
                continue
            with txn.step(f"checks on {target}"):
                for result in runner.run(target, mine, txn.progress):
                    result.trigger, result.journal_id = self.trigger, txn.jid
                    if result.outcome != "skipped":   # a clones-only check on prod: said, not kept
                        ws.state.add_check_result(result.row())
                    results.append(result)
        latest = latest_by(results)
        txn.message = "; ".join(f"{c.name}: {judge(c, self.env, latest).text}" for c in checks)
        return results

    @classmethod
    def undo(cls, ws: Workspace, args: dict[str, Any]) -> str:
        return "rolled-back"   # nothing was changed; the results kept so far are facts


def check_trailers(ws: Workspace, env: str, progress: Progress | None = None) -> str:
    """``Repro-Check:`` trailers for a promote: the checks run now on the clone and on prod
    (when they cannot run, the latest results kept say it)."""
    from workbench.check_results import trailer
    from workbench.errors import ReproError

    if not ws.spec.checks:
        return ""
    try:
        ws.run(Check(ws, env, trigger="promote", progress=progress))
    except ReproError as exc:
        if progress:
            progress(f"checks not run: {exc.message}")
    latest = latest_by(ws.latest_checks())
    lines = [trailer(c.name, env, latest.get((env, c.name)), latest.get((PROD, c.name)), c.on_prod)
             for c in ws.spec.checks.values()]
    return "".join(f"Repro-Check: {line}\n" for line in lines)
