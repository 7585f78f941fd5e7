"""The incident commands: ``check``, ``drift`` and ``report`` (the handlers in ``commands``
call these), and the check verdicts printed after a fork, reset or start.

Every byte goes through the call's output, so through the workspace's redactor.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from workbench.check_results import detail_lines, judge, latest_by
from workbench.names import PROD

if TYPE_CHECKING:
    from workbench.cli.commands import Call
    from workbench.workspace import Workspace


def run_check(c: Call) -> int:
    """Run the checks; exit 0 when each passes on ENV, 1 when one fails or cannot run."""
    a = c.args
    ws = c.ws
    results = ws.check(a.env, [a.name] if a.name else None, trigger="cli", progress=c.progress)
    c.done()
    latest = latest_by(results)
    names = [a.name] if a.name else list(ws.spec.checks)
    data: list[dict[str, Any]] = []
    for name in names:
        check = ws.spec.checks[name]
        mine = latest.get((a.env, name))
        prod = latest.get((PROD, name)) if a.env != PROD else None
        v = judge(check, a.env, latest)
        data.append({"name": name, "request": check.request, "service": check.service, "expect": check.expectation,
                     "verdict": v.text, "state": v.state, "passed": bool(mine and mine.passed),
                     "results": {r.env: r.as_dict() for r in (mine, prod) if r is not None}})

    def text() -> None:
        for name in names:
            lines = detail_lines(ws.spec.checks[name], a.env, latest, bodies=bool(a.name))
            c.out.write("".join(line + "\n" for line in lines))

    c.out.emit({"env": a.env, "checks": data}, text)
    return 0 if all(item["passed"] for item in data) else 1


def verdict_lines(ws: Workspace, env: str) -> list[str]:
    """``checks: order-1042 reproduces: 500 on prod and bug1`` for each check, from the latest
    results (printed after an operation that ran them)."""
    if not ws.spec.checks:
        return []
    latest = latest_by(ws.latest_checks())
    return [f"  check {c.name}: {judge(c, env, latest).text}" for c in ws.spec.checks.values()]


def checks_json(ws: Workspace, env: str) -> dict[str, Any]:
    """The verdicts as a JSON object (added to fork, reset and start's output when checks exist)."""
    latest = latest_by(ws.latest_checks())
    return {c.name: judge(c, env, latest).text for c in ws.spec.checks.values()}


def run_drift(c: Call) -> int:
    drift = c.ws.drift()
    c.out.emit(drift.as_dict(), lambda: c.out.write("".join(line + "\n" for line in drift.lines()) + (
        "Carry it into a clone, to review it and promote it as a commit: repro-tui fork prod NAME --with-drift\n"
        if drift.count else "")))
    return 0


def run_report(c: Call) -> int:
    from workbench.postmortem import report_path, since_of, write_report
    from workbench.postmortem_md import markdown

    a = c.args
    ws = c.ws
    target = report_path(ws, a.output) if a.output else None
    pm = ws.postmortem(a.envs or None, since_of(a.since))
    if a.json:
        c.out.write_json(pm.as_dict(), ensure_ascii=False)
        return 0
    text = ws.redactor.text(markdown(pm))
    if target is None:
        c.out.write(text)
        return 0
    write_report(target, text)
    sys.stderr.write(f"post-mortem written to {target}\n")
    return 0
