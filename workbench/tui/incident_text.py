"""The incident in the screen's words: the Checks pane, the checks' detail, prod's drift on
its row. Pure functions (no I/O, no Textual), over the engine's own verdicts, so the screen
says what the command line says."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workbench.check_results import detail_lines, judge, latest_by
from workbench.formats import printable


@dataclass(frozen=True)
class CheckLine:
    """One check in the Checks pane (two lines): ``✖ order-1042  reproduces`` and
    ``  500 on prod and bug1``."""

    name: str
    symbol: str
    headline: str
    detail: str
    tone: str


def check_lines(env: str, checks: Sequence[Any], results: Sequence[Any]) -> list[CheckLine]:
    """Each declared check on ``env`` beside prod, from the latest results."""
    latest = latest_by(list(results))
    out = []
    for check in checks:
        v = judge(check, env, latest)
        out.append(CheckLine(check.name, v.symbol, printable(v.headline), printable(v.detail), v.tone))
    return out


def checks_detail(env: str, checks: Sequence[Any], results: Sequence[Any]) -> str:
    """Every check on ``env`` beside prod: request, answers, verdict and how the bodies differ."""
    latest = latest_by(list(results))
    return printable("\n\n".join("\n".join(detail_lines(check, env, latest)) for check in checks))


def drift_note(count: int) -> str:
    """What prod's row says of its drift: ``⚠ drift 2`` (nothing when there is none)."""
    return f"⚠ drift {count}" if count else ""
