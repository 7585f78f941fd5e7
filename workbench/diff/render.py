"""A DiffReport as readable lines: pure functions, no I/O, colour only when asked.

    Config · 2 changes (1 unexpected)
      ~ config/app.yaml:feature.rounding  'floor' → 'round'
    Services · 1 change (0 unexpected)
      ~ services.web.env.SMTP_HOST  'smtp.example.com' → '127.0.0.1:1025'  [override]
"""

from __future__ import annotations

import json
from typing import Any

from workbench.diff.model import SECTIONS, Change, DiffReport, GroupSummary, group_name, limit_per_group
from workbench.diff.values import BlobText, RawText

SYMBOL = {"added": "+", "removed": "-", "changed": "~"}
_COLORS = {"added": "32", "removed": "31", "changed": "33", "title": "1", "dim": "2", "intent": "36"}
TITLES = {"config": "Config", "services": "Services", "data": "Data"}
MAX_VALUE = 120


def paint(text: str, style: str, color: bool) -> str:
    return f"\x1b[{_COLORS[style]}m{text}\x1b[0m" if color else text


def show_value(value: Any, section: str = "config", width: int = MAX_VALUE) -> str:
    """One value as text: strings quoted (so '' is not NULL), non-ASCII intact, long ones cut."""
    if value is None:
        text = "NULL" if section == "data" else "null"
    elif isinstance(value, BlobText):
        text = str(value)
    elif isinstance(value, RawText):
        text = f"'{value}' (not UTF-8)"
    elif isinstance(value, str):
        text = value if value.startswith("<secret:") else repr(value)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def change_line(change: Change, color: bool = False) -> str:
    sym = SYMBOL.get(change.kind, "?")
    if change.kind == "added":
        values = show_value(change.right, change.section)
    elif change.kind == "removed":
        values = show_value(change.left, change.section)
    elif change.lines is not None:
        n = sum(1 for x in change.lines if x[:1] in "+-" and x[:3] not in ("+++", "---"))
        values = f"(text differs: {n} lines)"
    elif change.intent == "scrub" and change.left is None and change.right is None:
        values = "(values masked in the clone)"
    else:
        values = f"{show_value(change.left, change.section)} → {show_value(change.right, change.section)}"
    if change.count and change.count > 1:
        values += f" ×{change.count}"
    tags = []
    if change.intent:
        tags.append(f"[{change.intent}]")
    if change.runtime:
        tags.append("(runtime)")
    if change.schema:
        tags.append("(schema)")
    line = f"  {paint(sym, change.kind, color)} {change.path}  {values}"
    if tags:
        line += "  " + paint(" ".join(tags), "dim" if change.runtime else "intent", color)
    if change.expected and color:
        line = paint(line, "dim", True) if not change.intent else line
    return line


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render(report: DiffReport, color: bool = False, limit: int | None = None) -> list[str]:
    """The whole report, grouped by section with counts; ``limit`` per group (file, service, table)."""
    lines = [paint(f"diff {report.left} → {report.right}", "title", color)]
    counts = report.counts()
    for s in SECTIONS:
        changes = report.section(s)
        c = counts[s]
        head = f"{TITLES[s]} · {_plural(c['total'], 'change')} ({c['unexpected']} unexpected"
        head += ", intended ones hidden)" if report.unexpected_only else ")"
        lines.append(paint(head, "title", color))
        shown = limit_per_group(changes, limit) if limit is not None else changes
        if s == "data":
            shown = grouped(shown)
        left_out: dict[str, int] = {}
        if limit is not None:
            for ch in changes:
                left_out[group_name(ch)] = left_out.get(group_name(ch), 0) + 1
        current = None
        for ch in shown:
            g = group_name(ch)
            if s == "data" and g != current:
                current = g
                summary = report.group("data", g)
                if summary is not None:
                    lines.append(paint(f"  {group_line(summary)}", "dim", color))
            lines.append(change_line(ch, color))
            if ch.lines:
                for raw in ch.lines[:40]:
                    style = "added" if raw.startswith("+") else "removed" if raw.startswith("-") else "dim"
                    lines.append("      " + paint(raw.rstrip("\n"), style, color))
                if len(ch.lines) > 40:
                    lines.append(f"      … {len(ch.lines) - 40} more lines")
        for name, n in left_out.items():
            if n > (limit or 0):
                lines.append(paint(f"  … {n - (limit or 0)} more in {name}", "dim", color))
        for summary in report.groups:
            if summary.section == s and summary.more:
                lines.append(paint(f"  … {summary.more} more in {summary.name} (limit reached)", "dim", color))
        if not changes:
            lines.append(paint("  no changes", "dim", color))
    return lines


def grouped(changes: list[Change]) -> list[Change]:
    """The changes with each group's together, groups in the order they first appear.

    A store's differ reports schema changes (every table's) before rows: a table with
    both would otherwise be headed twice."""
    groups: dict[str, list[Change]] = {}
    for ch in changes:
        groups.setdefault(group_name(ch), []).append(ch)
    return [ch for members in groups.values() for ch in members]


def group_line(g: GroupSummary) -> str:
    parts = [f"{g.name}: {_plural(g.total, 'change')}"]
    detail = [f"{n} {k}" for k, n in (("changed", g.changed), ("added", g.added), ("removed", g.removed)) if n]
    if detail:
        parts.append(f"({', '.join(detail)})")
    if g.note:
        parts.append(f"· {g.note}")
    return " ".join(parts)


def summary_line(report: DiffReport) -> str:
    """One line for a status bar: counts per section, unexpected first."""
    c = report.counts()
    return " · ".join(f"{TITLES[s]} {c[s]['unexpected']}/{c[s]['total']}" for s in SECTIONS)
