"""The diff model: one list of changes per section, and summaries of what was compared.

Everything here is plain data with no I/O, so the CLI, the screen and the tests read the
same thing. Values are stored already masked (see ``workbench.secrets``): a secret never
enters a ``Change``, so no output built from one can show it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

SECTIONS = ("config", "services", "data")
KINDS = ("added", "removed", "changed")
INTENTS = ("override", "scrub")


@dataclass
class Change:
    """One difference between the left side and the right side.

    ``intent`` is ``override`` or ``scrub`` when the clone differs on purpose, else None.
    ``runtime`` marks facts that are shown but are not changes (pid, uptime, state).
    Data changes also carry ``store``, ``table``, ``key`` (primary-key values) and
    ``column`` (None for a whole row or a whole table).
    """

    section: str
    path: str
    kind: str
    left: Any = None
    right: Any = None
    intent: str | None = None
    masked: bool = False
    store: str | None = None
    table: str | None = None
    key: list[Any] | None = None
    column: str | None = None
    count: int | None = None          # copies of a row in a table without a primary key
    runtime: bool = False
    schema: bool = False              # a schema change (table, column, index) rather than a row
    lines: list[str] | None = None    # unified diff lines of a file that does not parse

    @property
    def expected(self) -> bool:
        """True when the change is intended (or only a runtime fact)."""
        return self.intent is not None or self.runtime

    def show_row(self, row: Any, masked: bool) -> None:
        """A whole row on its side: the left for a removed one, the right for an added one."""
        if self.kind == "removed":
            self.left = row
        else:
            self.right = row
        self.masked = self.masked or masked

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "kind": self.kind, "left": _json_value(self.left),
                               "right": _json_value(self.right), "intent": self.intent, "masked": self.masked}
        if self.section == "data":
            out.update(store=self.store, table=self.table, key=_json_value(self.key), column=self.column)
            if self.count is not None:
                out["count"] = self.count
            if self.schema:
                out["schema"] = True
        if self.runtime:
            out["runtime"] = True
        if self.lines is not None:
            out["lines"] = list(self.lines)
        return out


@dataclass
class GroupSummary:
    """What was compared in one group: a config file, a service, or a store's table.

    ``shown`` changes are in the report; ``more`` were counted but left out by a limit.
    ``status`` says how the group was decided: ``same`` (files or pages identical, nothing
    read row by row), ``compared``, ``cached``, ``added``, ``removed`` or ``skipped``.
    """

    section: str
    name: str                         # "config/app.yaml", "web", "db.orders"
    status: str = "compared"
    shown: int = 0
    more: int = 0
    added: int = 0
    removed: int = 0
    changed: int = 0
    note: str | None = None
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.shown + self.more

    def count(self, kind: str, limit: int | None) -> bool:
        """Count a change of ``kind`` (added, removed, changed); True when it is shown, False
        when ``limit`` changes are shown already (it is counted in ``more``)."""
        setattr(self, kind, getattr(self, kind) + 1)
        if limit is not None and self.shown >= limit:
            self.more += 1
            return False
        self.shown += 1
        return True

    def as_dict(self) -> dict[str, Any]:
        return {"section": self.section, "name": self.name, "status": self.status, "shown": self.shown,
                "more": self.more, "added": self.added, "removed": self.removed, "changed": self.changed,
                "note": self.note, "seconds": round(self.seconds, 6)}


@dataclass
class DiffReport:
    left: str
    right: str
    config: list[Change] = field(default_factory=list)
    services: list[Change] = field(default_factory=list)
    data: list[Change] = field(default_factory=list)
    groups: list[GroupSummary] = field(default_factory=list)
    stores: dict[str, dict[str, Any]] = field(default_factory=dict)   # name -> {type, left, right, same}
    seconds: dict[str, float] = field(default_factory=dict)           # per section
    unexpected_only: bool = False

    def section(self, name: str) -> list[Change]:
        if name not in SECTIONS:
            raise ValueError(f"unknown section {name!r}")
        changes: list[Change] = getattr(self, name)
        return changes

    def add(self, change: Change) -> None:
        self.section(change.section).append(change)

    def changes(self) -> list[Change]:
        return [*self.config, *self.services, *self.data]

    def group(self, section: str, name: str) -> GroupSummary | None:
        for g in self.groups:
            if g.section == section and g.name == name:
                return g
        return None

    def counts(self) -> dict[str, dict[str, int]]:
        """Per section: changes (runtime facts excluded), unexpected ones, and ones left out by a limit."""
        out = {}
        for name in SECTIONS:
            real = [c for c in self.section(name) if not c.runtime]
            more = sum(g.more for g in self.groups if g.section == name)
            out[name] = {"total": len(real) + more, "unexpected": sum(1 for c in real if c.intent is None),
                         "more": more}
        return out

    @property
    def clean(self) -> bool:
        """No unexpected change, and none left out by a limit (a hidden change might be one)."""
        return all(c.expected for c in self.changes()) and not any(g.more for g in self.groups)

    def only_unexpected(self) -> DiffReport:
        """A copy without intended changes and runtime facts, so a fresh clone reads empty."""
        keep = {s: [c for c in self.section(s) if not c.expected] for s in SECTIONS}
        return replace(self, config=keep["config"], services=keep["services"], data=keep["data"],
                       groups=list(self.groups), unexpected_only=True)

    def to_json(self, limit: int | None = None) -> dict[str, list[dict[str, Any]]]:
        """Exactly ``{"config": [...], "services": [...], "data": [...]}``.

        ``limit`` keeps at most that many changes per group (a config file, a service, a
        table), the same unit the diff itself limits by."""
        out: dict[str, list[dict[str, Any]]] = {}
        for s in SECTIONS:
            changes = self.section(s)
            if limit is not None:
                changes = limit_per_group(changes, limit)
            out[s] = [c.as_dict() for c in changes]
        return out


def group_name(change: Change) -> str:
    """The group a change is counted and limited in."""
    if change.section == "data":
        return f"{change.store}.{change.table}" if change.table else str(change.store)
    if change.section == "config":
        return change.path.split(":", 1)[0]
    parts = change.path.split(".")
    return parts[1] if len(parts) > 1 else change.path


def limit_per_group(changes: list[Change], limit: int) -> list[Change]:
    seen: dict[str, int] = {}
    out = []
    for c in changes:
        g = group_name(c)
        if seen.get(g, 0) < limit:
            out.append(c)
        seen[g] = seen.get(g, 0) + 1
    return out


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        from workbench.diff.values import abbreviate_blob
        return str(abbreviate_blob(bytes(value)))
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
