"""Turning the engine's data into words and symbols for the screen.

Pure functions: no I/O, no Textual, no clock of their own (the time "now" is passed in),
so they are tested without a terminal and the screen stays readable without colour —
every state and every kind of change has a symbol *and* a word; colour only repeats them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.formats import age, count, duration, printable, size  # noqa: F401 - the screen's formatters too

# --- states -----------------------------------------------------------------------

STATE_SYMBOLS: dict[str, str] = {
    "running": "●",
    "stopped": "○",
    "partial": "◐",
    "crashed": "✖",
    "broken": "✖",
    "pending": "!",
    "ready": "◇",
    "busy": "⟳",
}
"""One symbol per environment state: readable with NO_COLOR and in a 16-colour terminal."""

STATE_TONES: dict[str, str] = {
    "running": "good",
    "stopped": "quiet",
    "partial": "warn",
    "crashed": "bad",
    "broken": "bad",
    "pending": "warn",
    "ready": "quiet",
    "busy": "warn",
}
"""How a state is toned (a CSS class suffix); the stylesheet decides the colour."""


def state_symbol(state: str) -> str:
    return STATE_SYMBOLS.get(state, "?")


def state_label(state: str) -> str:
    """``● running``: the symbol and the word, never colour alone."""
    return f"{state_symbol(state)} {state or 'unknown'}"


def state_tone(state: str) -> str:
    return STATE_TONES.get(state, "quiet")


# --- environments -----------------------------------------------------------------

def screen_age(ts: float | None, now: float) -> str:
    """An age as the screen shows it: ``<1m`` for the first minute, then ``2m``, ``3h``.

    Over SSH every repaint is bytes on the link; ages counted in seconds would repaint the
    environments and the journal every few seconds while nobody types."""
    if ts and 0 <= now - ts < 60:
        return "<1m"
    return age(ts, now)


def ports_text(services: dict[str, dict[str, Any]], mask: bool = False) -> str:
    """``:8001 :8002`` — the ports an environment's services listen on."""
    ports = [s.get("port") for s in services.values() if s.get("port")]
    if not ports:
        return ""
    return " ".join(":····" if mask else f":{p}" for p in ports)


@dataclass(frozen=True)
class EnvLine:
    """What the environment list shows for one environment (two lines)."""

    name: str
    symbol: str
    state: str
    tone: str
    age: str
    branch: str
    snapshots: str
    ports: str
    owner: str = ""               # the user who forked the clone
    note: str = ""                  # e.g. prod's drift: "⚠ drift 2"

    @property
    def first(self) -> str:
        return f"{self.symbol} {self.name}"

    @property
    def second(self) -> str:
        parts = [self.branch, self.snapshots, self.ports, self.note]
        return "  ".join(p for p in parts if p)


def env_line(env: Any, now: float, busy: str | None = None, mask: bool = False, note: str = "") -> EnvLine:
    """One environment as the list shows it. ``busy`` names an operation under way on it."""
    state = "busy" if busy else env.state
    word = busy or env.state
    snaps = "" if env.kind == "prod" else count(len(env.snapshots), "snap")
    return EnvLine(name=env.name, symbol=state_symbol(state), state=word, tone=state_tone(state),
                   age="" if env.kind == "prod" else screen_age(env.created_at, now), branch=env.branch,
                   snapshots=snaps, ports=ports_text(env.services, mask), note=note,
                   owner=getattr(env, "owner", None) or "")


def forking_line(name: str) -> EnvLine:
    """A clone whose fork is under way: listed at once, before the engine records it."""
    return EnvLine(name=name, symbol=state_symbol("busy"), state="forking", tone=state_tone("busy"), age="",
                   branch=f"repro/{name}", snapshots="", ports="")


def snapshot_line(snap: Any, now: float, last_reset: str | None) -> tuple[str, str, str]:
    """(name, age, notes) for one snapshot: notes say ready (instant reset) and last reset."""
    notes = []
    if snap.ready:
        notes.append("ready")
    if last_reset == snap.name:
        notes.append("◂ reset here")
    return snap.name, screen_age(snap.created_at, now), " ".join(notes)


# --- the journal ------------------------------------------------------------------

OUTCOME_SYMBOLS = {"ok": "✓", "failed": "✖", "rolled-back": "↶", "completed-by-recovery": "✓", "running": "…"}


def outcome_label(outcome: str) -> str:
    symbol = OUTCOME_SYMBOLS.get(outcome.split(" ", 1)[0], "✖" if outcome.startswith("failed") else "·")
    return f"{symbol} {outcome}"


def shown_in_journal(entry: Any) -> bool:
    """The background preparation of ready copies is shown only when it fails."""
    return not (entry.op == "prepare-ready" and entry.outcome in ("ok", "running"))


def journal_line(entry: Any, now: float, me: str = "") -> str:
    """``2m  ✓ fork b1  1.4 s  copy db + scrub 0.9 s`` — what happened and how long it took
    (and who did it, when it was not ``me``)."""
    what = f"{entry.op} {entry.env}" if entry.env else entry.op
    if me and f"{entry.user}@{entry.host}" != me:
        what += f" (by {entry.user})"
    symbol = OUTCOME_SYMBOLS.get(entry.outcome, "✖" if entry.outcome.startswith("failed") else "·")
    word = "" if entry.outcome in ("ok", "running") else f" {entry.outcome}"
    took = duration(entry.seconds) if entry.finished_at else "running"
    slowest = ""
    if entry.steps:
        step = max(entry.steps, key=lambda s: s.get("seconds", 0))
        if len(entry.steps) > 1 and step.get("seconds", 0) >= 0.05:
            slowest = f"  slowest: {step.get('step')} {duration(step.get('seconds'))}"
    message = f"  {printable(first_line(entry.message))}" if entry.message and entry.outcome != "ok" else ""
    return f"{screen_age(entry.started_at, now):>4} ago  {symbol} {what}{word}  {took}{slowest}{message}"


def first_line(text: str | None, limit: int = 200) -> str:
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


# --- changes ----------------------------------------------------------------------

KIND_SYMBOLS = {"added": "+", "removed": "-", "changed": "~"}
KIND_TONES = {"added": "good", "removed": "bad", "changed": "warn"}
SECTIONS = ("config", "services", "data")


def kind_symbol(kind: str) -> str:
    return KIND_SYMBOLS.get(kind, "?")


def value_text(value: Any, limit: int = 60) -> str:
    """A value on one line: strings as they are, None as ∅, bytes abbreviated, long text cut."""
    if value is None:
        text = "∅"
    elif isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        text = f"<{len(data)} bytes {data[:8].hex()}{'…' if len(data) > 8 else ''}>"
    elif isinstance(value, str):
        text = value if value else "''"
    elif isinstance(value, dict):
        text = ", ".join(f"{k}={value_text(v, limit)}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        text = ", ".join(value_text(v, limit) for v in value)
    elif isinstance(value, float) and value.is_integer():
        text = repr(value)
    else:
        text = str(value)
    text = text.replace("\r", "").replace("\n", "⏎").replace("\t", " ")
    text = printable(text)   # a control character shown as its escape, never sent to the terminal
    return text if len(text) <= limit else text[: limit - 1] + "…"


def change_values(change: Any, limit: int = 60) -> str:
    """``floor → round`` for a change, the value for an addition or a removal; what cannot
    be shown says why (a scrubbed column, a file that is compared as text)."""
    kind = getattr(change, "kind", "changed")
    left, right = getattr(change, "left", None), getattr(change, "right", None)
    lines = getattr(change, "lines", None)
    if lines is not None:
        n = sum(1 for x in lines if x[:1] in "+-" and x[:3] not in ("+++", "---"))
        text = f"(text differs: {n} lines)"
    elif getattr(change, "intent", None) == "scrub" and left is None and right is None:
        text = "(masked in the clone)"
    elif kind == "added":
        text = value_text(right, limit)
    elif kind == "removed":
        text = value_text(left, limit)
    else:
        text = f"{value_text(left, limit // 2)} → {value_text(right, limit // 2)}"
    copies = getattr(change, "count", None)
    return f"{text} ×{copies}" if copies and copies > 1 else text


def intent_text(change: Any) -> str:
    """Why a change is there on purpose (or what kind of fact it is), in parentheses."""
    intent = getattr(change, "intent", None)
    if intent:
        return f"({intent})"
    if getattr(change, "runtime", False):
        return "(runtime)"
    return "(schema)" if getattr(change, "schema", False) else ""


def section_path(change: Any, section: str) -> str:
    """A change's path as its tab shows it: ``web.env.MODE`` in the Services tab (the
    section is already said by the tab)."""
    path = str(getattr(change, "path", ""))
    prefix = f"{section}."
    return path[len(prefix):] if path.startswith(prefix) else path


def key_text(key: Any) -> str:
    if key is None:
        return ""
    if isinstance(key, list | tuple):
        return ",".join(value_text(k, 24) for k in key)
    return value_text(key, 24)


def data_where(change: Any) -> tuple[str, str]:
    """(key, column) cells of a data change: a row's key and column, ``(all rows)`` for a
    whole scrubbed column, ``(schema)`` for a table or column definition, a file's name."""
    key, column = getattr(change, "key", None), getattr(change, "column", None)
    if getattr(change, "table", None) is None:           # a folder store: the file
        return key_text(key) or str(getattr(change, "path", "")), ""
    if getattr(change, "schema", False):
        return "(schema)", column or ""
    if key is None:
        return ("(all rows)", column) if column else ("(no key)", "(row)")
    return key_text(key), column or "(row)"


CELL_LIMIT = 600
"""Characters of a value a change table keeps: the table cuts to its column's width, so a wide
terminal shows more; the detail view (Enter) shows a value whole."""


def change_cells(change: Any, section: str) -> tuple[str, ...]:
    """The cells of one row of a change table. Data rows: kind, key, column, values,
    intent; config and services rows: kind, path, values, intent."""
    symbol = kind_symbol(getattr(change, "kind", "changed"))
    if section == "data":
        key, column = data_where(change)
        return (symbol, key, column, change_values(change, CELL_LIMIT), intent_text(change))
    return (symbol, section_path(change, section), change_values(change, CELL_LIMIT), intent_text(change))


def change_detail(change: Any) -> str:
    """Everything about one change, for the two lines under a change table."""
    kind = getattr(change, "kind", "changed")
    head = f"{kind_symbol(kind)} {kind}  {getattr(change, 'path', '')}"
    tag = intent_text(change)
    left, right = getattr(change, "left", None), getattr(change, "right", None)
    lines = getattr(change, "lines", None)
    if lines is not None:
        changed = [x for x in lines if x[:1] in "+-" and x[:3] not in ("+++", "---")]
        values = " ⏎ ".join(changed[:3]) + (" …" if len(changed) > 3 else "")
    elif getattr(change, "intent", None) == "scrub" and left is None and right is None:
        values = "values masked in the clone by its scrub rule"
    elif kind == "added":
        values = f"now: {value_text(right, 400)}"
    elif kind == "removed":
        values = f"was: {value_text(left, 400)}"
    else:
        values = f"{value_text(left, 200)} → {value_text(right, 200)}"
    return f"{head}\n{tag + ' ' if tag else ''}{values}"


def matches(change: Any, needle: str) -> bool:
    """Whether a change matches the filter text (its path or either value, case-insensitively)."""
    if not needle:
        return True
    needle = needle.lower()
    if needle in str(getattr(change, "path", "")).lower():
        return True
    for side in ("left", "right"):
        value = getattr(change, side, None)
        if value is not None and needle in value_text(value, 10_000).lower():
            return True
    intent = getattr(change, "intent", None)
    return bool(intent and needle == intent.lower())


def tab_label(title: str, unexpected: int, intended: int = 0, more: int = 0) -> str:
    """``Config 3`` — the tab label with its count of unexpected changes; ``+2`` counts the
    intended ones (overrides, scrubs), ``…`` says a limit left some out."""
    label = f"{title} {unexpected}{'…' if more else ''}"
    return f"{label} +{intended}" if intended else label


@dataclass(frozen=True)
class TableGroup:
    """The changes of one table (or the schema changes of one store) in the Data tab."""

    store: str
    table: str | None
    indexes: Sequence[int]          # positions in the section's list of changes
    intended: int = 0

    @property
    def label(self) -> str:
        where = self.table if self.table is not None else "files"
        return f"{self.store} › {where}"


def group_data(changes: Sequence[Any]) -> list[TableGroup]:
    """Group data changes by store and table, keeping the order they came in.

    Runs off the screen's thread for large diffs: one pass, integers only, so a million
    changes group in well under a second and the row table then pages over the indexes."""
    from array import array

    order: list[tuple[str, str | None]] = []
    found: dict[tuple[str, str | None], array] = {}
    intended: dict[tuple[str, str | None], int] = {}
    for i, change in enumerate(changes):
        store = getattr(change, "store", None) or str(getattr(change, "path", "?")).split(".", 1)[0]
        table = getattr(change, "table", None)
        key = (store, table)
        bucket = found.get(key)
        if bucket is None:
            bucket = found[key] = array("l")
            order.append(key)
            intended[key] = 0
        bucket.append(i)
        if getattr(change, "intent", None):
            intended[key] += 1
    return [TableGroup(store=s, table=t, indexes=found[(s, t)], intended=intended[(s, t)]) for s, t in order]


def group_line(group: TableGroup) -> str:
    n = len(group.indexes)
    note = f"  ({group.intended} intended)" if group.intended and group.intended == n else ""
    return f"{group.label}  {n}{note}"


def expected(change: Any) -> bool:
    """Intended (an override, a scrub) or only a runtime fact (a pid): hidden by ``u``."""
    return bool(getattr(change, "intent", None) or getattr(change, "runtime", False))


def visible_indexes(changes: Sequence[Any], show_intended: bool, needle: str = "",
                    among: Iterable[int] | None = None) -> Sequence[int]:
    """Positions of the changes to show. Without a filter and with everything shown this is
    a ``range``: no work at all, whatever the number of changes."""
    from array import array

    if show_intended and not needle:
        return range(len(changes)) if among is None else among  # type: ignore[return-value]
    out = array("l")
    for i in (range(len(changes)) if among is None else among):
        c = changes[i]
        if (show_intended or not expected(c)) and matches(c, needle):
            out.append(i)
    return out


def section_counts(changes: Sequence[Any]) -> tuple[int, int]:
    """(unexpected, intended) changes of a section; runtime facts count as neither."""
    unexpected = intended = 0
    for c in changes:
        if getattr(c, "runtime", False):
            continue
        if getattr(c, "intent", None):
            intended += 1
        else:
            unexpected += 1
    return unexpected, intended


def title_text(workspace: str, env: Any | None, worktree: str, restart_key: str) -> str:
    """The first line of the screen: the environment every key acts on (the target), where its
    files are (to edit them from another shell), and whether its services need a restart."""
    if env is None:
        return f"repro-tui · {workspace}"
    parts = [f"▶ {env.name}"]
    if getattr(env, "restart_needed", None):
        parts.append(f"⚠ restart needed ({restart_key})")
    parts.append(f"{'read-only, ' if env.kind == 'prod' else ''}worktree {worktree}")
    return " · ".join(parts) + f"  │ repro-tui · {workspace}"


def worktree_text(worktree: Path, root: Path, cwd: Path | None, home: Path, mask: bool = False) -> str:
    """Where an environment's files are, as short as stays usable: relative to the folder the
    screen was started in when it is inside it, else with ``~`` for the home folder; relative
    to the workspace when ``mask`` is on (snapshot tests, whose folders change every run)."""
    if mask:
        rel = worktree.relative_to(root) if worktree.is_relative_to(root) else worktree
        return f"‹workspace›/{rel}" if str(rel) != "." else "‹workspace›"
    if cwd is not None and worktree.is_relative_to(cwd):
        rel = worktree.relative_to(cwd)
        return "./" if str(rel) == "." else f"./{rel}"
    return f"~/{worktree.relative_to(home)}" if worktree.is_relative_to(home) else str(worktree)


@dataclass
class DiffViews:
    """What the diff pane shows of a report: positions of the visible changes per section,
    and for the Data tab the tables with their own visible positions. Built off the
    screen's thread for large reports (it is one pass over the changes)."""

    report: Any
    sections: dict[str, Sequence[int]]
    groups: list[TableGroup]
    group_views: list[Sequence[int]]
    counts: dict[str, tuple[int, int, int]]      # section -> (unexpected, intended, more)
    show_intended: bool
    needle: str


def build_views(report: Any, show_intended: bool, needle: str = "") -> DiffViews:
    sections: dict[str, Sequence[int]] = {}
    counts: dict[str, tuple[int, int, int]] = {}
    more_of: dict[str, int] = {}
    for g in getattr(report, "groups", []) or []:
        more_of[g.section] = more_of.get(g.section, 0) + (g.more or 0)
    for name in SECTIONS:
        changes = getattr(report, name)
        unexpected, intended = section_counts(changes)
        counts[name] = (unexpected, intended, more_of.get(name, 0))
        if name != "data":
            sections[name] = visible_indexes(changes, show_intended, needle)
    groups = group_data(report.data)
    group_views = [visible_indexes(report.data, show_intended, needle, among=g.indexes) for g in groups]
    sections["data"] = range(len(report.data))
    return DiffViews(report=report, sections=sections, groups=groups, group_views=group_views, counts=counts,
                     show_intended=show_intended, needle=needle)


def group_more(report: Any, group: TableGroup) -> int:
    """How many changes of a table a limit left out of the report."""
    name = f"{group.store}.{group.table}" if group.table else group.store
    for g in getattr(report, "groups", []) or []:
        if g.section == "data" and g.name == name:
            return g.more or 0
    return 0


def table_line(group: TableGroup, shown: int, more: int = 0) -> str:
    """``db › orders  12`` with ``+N more`` when a limit left some out."""
    total = len(group.indexes)
    counted = f"{shown}" if shown == total else f"{shown} of {total}"
    return f"{group.label}  {counted}" + (f" (+{more} more)" if more else "")


def empty_text(section: str, intended: int, show_intended: bool, needle: str) -> str:
    word = {"config": "config", "services": "service", "data": "data"}[section]
    if needle:
        return f"no {word} change matches “{needle}” (esc clears the filter)"
    if intended and not show_intended:
        return f"no unexpected {word} change; u shows the {intended} intended"
    return f"no {word} change"
