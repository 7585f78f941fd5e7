"""Live diff of config, services and data between two sides (an environment or a snapshot).

``compute_diff`` builds one ``DiffReport``; ``iter_changes`` streams the same changes as
they are found (config first, then services, then data, table by table), for a screen
that shows the first ones before the last table is done. Imports stay light: deepdiff
and ruamel.yaml are loaded only when a config file actually differs.

What is read from the workspace object: ``spec`` (config_files, stores, scrub rules),
``secrets`` (a SecretPolicy) and, when present, ``describe_side(side)`` (the backend's
normalised inspect data per service, for Docker).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from workbench.diff.model import SECTIONS, Change, DiffReport, GroupSummary

if TYPE_CHECKING:
    from workbench.model import Side

__all__ = ["Change", "DiffReport", "GroupSummary", "compute_diff", "iter_changes", "register_data_differ"]

DataDiffer = Callable[..., Iterator[Change]]
# store type -> fn(store, left_location, right_location, *, scrubbed, include_scrubbed, limit, shower,
#                  left_immutable, right_immutable, groups) yielding changes
_DATA_DIFFERS: dict[str, DataDiffer] = {}


def register_data_differ(store_type: str, fn: DataDiffer) -> None:
    """Let another store type (e.g. postgres) stream its changes into the same report."""
    _DATA_DIFFERS[store_type] = fn


def compute_diff(ws: Any, left: Side, right: Side, *, only_unexpected: bool = False,
                 include_scrubbed: bool = False, limit: int | None = None,
                 sections: Iterable[str] | None = None) -> DiffReport:
    """The diff of two sides. ``limit`` caps the changes kept per group (a config file, a
    service, a table); the rest are counted in ``report.groups[...].more``."""
    report = DiffReport(left=left.ref, right=right.ref)
    started: dict[str, float] = {}
    for item in iter_changes(ws, left, right, include_scrubbed=include_scrubbed, limit=limit,
                             sections=sections, report=report, timings=started):
        report.add(item)
    return report.only_unexpected() if only_unexpected else report


def iter_changes(ws: Any, left: Side, right: Side, *, include_scrubbed: bool = False, limit: int | None = None,
                 sections: Iterable[str] | None = None, report: DiffReport | None = None,
                 timings: dict[str, float] | None = None) -> Iterator[Change]:
    """Stream the changes; when ``report`` is given, its groups, stores and timings are filled in."""
    from workbench.diff.values import Shower

    wanted = list(sections) if sections is not None else list(SECTIONS)
    bad = [s for s in wanted if s not in SECTIONS]
    if bad:
        from workbench.errors import InvalidInput
        raise InvalidInput(f"unknown diff section {bad[0]!r}.", f"Use one or more of: {', '.join(SECTIONS)}.")
    shower = Shower(getattr(ws, "secrets", None))
    groups = report.groups if report is not None else []
    for section in SECTIONS:
        if section not in wanted:
            continue
        t0 = time.perf_counter()
        if section == "config":
            yield from _config(ws, left, right, shower, limit, groups)
        elif section == "services":
            yield from _services(ws, left, right, shower, limit, groups)
        else:
            yield from _data(ws, left, right, shower, limit, include_scrubbed, groups, report)
        if report is not None:
            report.seconds[section] = time.perf_counter() - t0


def _config(ws: Any, left: Side, right: Side, shower: Any, limit: int | None,
            groups: list[GroupSummary]) -> Iterator[Change]:
    from workbench.diff.config import ConfigDiff

    patterns = list(getattr(ws.spec, "config_files", []) or [])
    if not patterns:
        return
    d = ConfigDiff(patterns, left.config_root, right.config_root, shower, limit)
    try:
        yield from d.changes()
    finally:
        groups.extend(d.groups)


def _services(ws: Any, left: Side, right: Side, shower: Any, limit: int | None,
              groups: list[GroupSummary]) -> Iterator[Change]:
    from workbench.diff.services import ServicesDiff

    describe = getattr(ws, "describe_side", None)
    if not callable(describe):  # docker: the containers' inspect data (workbench.diff.containers)
        from functools import partial

        from workbench.diff import containers
        if containers.describes(ws):
            describe = partial(containers.describe_side, ws)
    described = None
    if callable(describe):
        a, b = describe(left), describe(right)
        if a is not None and b is not None:  # a snapshot has no containers
            described = (a, b)
    d = ServicesDiff(left, right, shower, limit, described=described)
    try:
        yield from d.changes()
    finally:
        groups.extend(d.groups)


def scrubbed_columns(ws: Any, store: str) -> dict[str, set[str]]:
    """Lower-case table -> lower-case columns the spec scrubs in ``store``."""
    out: dict[str, set[str]] = {}
    for rule in ws.spec.scrub_rules(store):
        out.setdefault(rule.table.split(".")[-1].lower(), set()).add(rule.column.lower())
    return out


def _quiet_wal(path: str) -> bool:
    """A WAL database that no process has open (no -shm beside it) and whose file holds every
    commit (no -wal left): opened read-only, SQLite would still make -wal and -shm files
    beside it (prod's too), so it is read immutable."""
    try:
        with open(path, "rb") as f:
            header = f.read(20)
        wal = os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0
    except OSError:
        return False
    return header[18:20] == b"\x02\x02" and not wal and not os.path.exists(path + "-shm")


def _data(ws: Any, left: Side, right: Side, shower: Any, limit: int | None, include_scrubbed: bool,
          groups: list[GroupSummary], report: DiffReport | None) -> Iterator[Change]:
    stores = getattr(ws.spec, "stores", {})
    names = list(left.store_locations) + [n for n in right.store_locations if n not in left.store_locations]
    for name in names:
        a, b = left.store_locations.get(name), right.store_locations.get(name)
        kind = stores[name].type if name in stores else "unknown"
        info: dict[str, Any] = {"type": kind, "left": a, "right": b}
        if report is not None:
            report.stores[name] = info
        if a is None or b is None:
            yield Change("data", name, "added" if a is None else "removed", left=a, right=b, store=name,
                         schema=True)
            continue
        mine: list[GroupSummary] = []
        try:
            if kind == "sqlite":
                from workbench.diff.sqlite import Options, diff_files
                opts = Options(store=name, scrubbed=scrubbed_columns(ws, name), include_scrubbed=include_scrubbed,
                               limit=limit, shower=shower, left_immutable=left.snapshot is not None or _quiet_wal(a),
                               right_immutable=right.snapshot is not None or _quiet_wal(b))
                yield from diff_files(a, b, opts, mine)
            elif kind == "files":
                from workbench.diff.files import diff_folders
                yield from diff_folders(name, a, b, limit, mine)
            elif kind == "postgres":  # both servers compared by checksums (workbench.diff.postgres)
                from workbench.diff.postgres import diff_store
                yield from diff_store(ws, name, left, right, scrubbed=scrubbed_columns(ws, name),
                                      include_scrubbed=include_scrubbed, limit=limit, shower=shower, groups=mine)
            elif kind in _DATA_DIFFERS:
                yield from _DATA_DIFFERS[kind](name, a, b, scrubbed=scrubbed_columns(ws, name),
                                               include_scrubbed=include_scrubbed, limit=limit, shower=shower,
                                               left_immutable=left.snapshot is not None,
                                               right_immutable=right.snapshot is not None, groups=mine)
            else:
                mine.append(GroupSummary("data", name, status="skipped",
                                         note=f"no row diff for {kind} stores yet"))
        finally:
            groups.extend(mine)
            info["same"] = all(g.status == "same" for g in mine)
