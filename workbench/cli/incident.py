"""The incident commands: ``check``, ``drift`` and ``report`` (the handlers in ``commands``
call these), and the check verdicts printed after a fork, reset or start.

Every byte goes through the call's output, so through the workspace's redactor.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.check_results import judge, latest_by, response_lines, result_line
from workbench.errors import InvalidInput, Refused
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
        for item in data:
            name: str = item["name"]
            to = f" → {item['service']}" if item["service"] else ""
            c.out.write(f"{name}  {item['request']}{to}  (passes with {item['expect']})\n")
            mine, prod = latest.get((a.env, name)), latest.get((PROD, name))
            if a.name:
                lines = response_lines(name, a.env, mine, prod if a.env != PROD else None)
            else:
                sides = [(PROD, prod), (a.env, mine)] if a.env != PROD else [(PROD, mine)]
                width = max(len(who) for who, _ in sides)
                lines = [f"  {who.ljust(width)}  {result_line(r)}" for who, r in sides]
                if a.env != PROD:
                    lines.append(f"  {item['verdict']}")
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
    from workbench.postmortem import since_of
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
    import sys

    sys.stderr.write(f"post-mortem written to {target}\n")
    return 0


def report_path(ws: Workspace, output: str) -> Path:
    """Where ``-o`` writes: anywhere but prod's checkout (a file there would be a change to prod;
    ``.repro/`` is fine)."""
    path = Path(output).expanduser().absolute()
    root, repro = ws.root.resolve(), ws.repro_dir.resolve()
    real = path.parent.resolve() / path.name
    if (real == root or root in real.parents) and repro not in real.parents:
        raise Refused(f"{path} is inside prod's checkout: a report there would be a change to prod.",
                      "Write it elsewhere (-o ~/postmortem.md), under .repro/, or print it: repro-tui report > FILE")
    if not real.parent.is_dir():
        raise InvalidInput(f"cannot write {path}: the folder {path.parent} does not exist.",
                           "Create it first, or choose another place for the report.")
    if real.is_dir():
        raise InvalidInput(f"cannot write {path}: it is a folder.", "Name a file, e.g. -o ~/postmortem.md")
    return real


def write_report(path: Path, text: str) -> None:
    """Whole or not at all: written beside the target, then renamed over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise Refused(f"cannot write {path}: {exc.strerror}.", "Choose another place: -o FILE") from None
