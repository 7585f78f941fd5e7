"""Everything about one change, for the detail view (Enter on a change): pure, no Textual.

The change tables cut paths and values to fit a line. The detail view shows them whole:
the full path, the kind and why it is there on purpose, and both sides' values, wrapped,
never cut. A change of a row is shown side by side, column by column: every changed column
of that row (the report's other changes with the same key), or the whole row when it was
added or removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.formats import printable
from workbench.tui.presentation import intent_text, key_text, kind_symbol


@dataclass(frozen=True)
class Detail:
    title: str
    facts: list[tuple[str, str]]                   # (label, text): what, where, values
    columns: tuple[str, str] = ("", "")            # the two sides' names, over the side-by-side rows
    rows: list[tuple[str, str, str]] = field(default_factory=list)   # (column, left, right)
    lines: list[str] = field(default_factory=list)                    # a text file's differing lines


def whole(value: Any) -> str:
    """A value in full: text as it is (its line breaks kept), ∅ for NULL, bytes in hex."""
    if value is None:
        return "∅"
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return f"<{len(data)} bytes> {data.hex()}"
    if isinstance(value, str):
        return printable(value) if value else "''"   # line breaks kept, control characters escaped
    if isinstance(value, dict):
        return "\n".join(f"{k}: {whole(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "\n".join(whole(v) for v in value)
    return printable(str(value))


def _row(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def detail_of(change: Any, left: str, right: str, report: Any = None) -> Detail:
    """The detail of ``change`` between the sides named ``left`` and ``right``; ``report`` (its
    diff) gives the other changed columns of the same row."""
    kind = getattr(change, "kind", "changed")
    path = str(getattr(change, "path", ""))
    tag = intent_text(change)
    facts = [("change", f"{kind_symbol(kind)} {kind}{'  ' + tag if tag else ''}"), ("path", path)]
    title = f"{kind_symbol(kind)} {path}"
    lines = getattr(change, "lines", None)
    if lines is not None:
        return Detail(title, facts + [("values", "the file does not parse: its differing lines")],
                      lines=[x for x in lines if not x.startswith(("+++", "---"))])
    if getattr(change, "intent", None) == "scrub" and change.left is None and change.right is None:
        return Detail(title, facts + [("values", f"masked in {right} by its scrub rule: "
                                                 "the column's values are never shown")])
    table = getattr(change, "table", None)
    if table is not None and not getattr(change, "schema", False):
        facts.append(("row", f"{change.store} › {table}  key {key_text(change.key) or '(none)'}"))
        left_row, right_row = _row(change.left), _row(change.right)
        if getattr(change, "column", None) is None and (left_row or right_row):    # a whole row
            names = list(dict.fromkeys([*(left_row or {}), *(right_row or {})]))
            rows = [(name, _side(left_row, name), _side(right_row, name)) for name in names]
            return Detail(title, facts, (left, right), rows)
        siblings = _same_row(change, report)
        rows = [(str(c.column or "(row)"), whole(c.left), whole(c.right)) for c in siblings]
        return Detail(title, facts, (left, right), rows)
    if kind == "added":
        facts.append((right, whole(change.right)))
    elif kind == "removed":
        facts.append((left, whole(change.left)))
    else:
        facts += [(left, whole(change.left)), (right, whole(change.right))]
    return Detail(title, facts)


def _side(row: dict[str, Any] | None, column: str) -> str:
    return "(no row)" if row is None else whole(row.get(column))


def _same_row(change: Any, report: Any) -> Sequence[Any]:
    """The report's changes of the same store, table and key (the change itself first)."""
    found = [change]
    if report is None or change.key is None:
        return found
    for other in getattr(report, "data", []):
        if other is not change and other.table == change.table and other.store == change.store \
                and other.key == change.key and other.column is not None:
            found.append(other)
        if len(found) >= 200:
            break
    return found
