"""Live diff of config, services and data between two sides (an environment or a snapshot).

``compute_diff`` builds one ``DiffReport``; ``iter_changes`` streams the same changes as
they are found (config first, then services, then data, table by table), for a screen
that shows the first ones before the last table is done. Imports stay light: deepdiff
and ruamel.yaml are loaded only when a config file actually differs.

The diff reads nothing but what it is handed: the two sides and a ``DiffSource`` (config
files, store kinds and scrub rules, the secret policy, how to describe running services).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from workbench.diff.model import SECTIONS, Change, DiffReport, GroupSummary
from workbench.diff.source import DiffSource, StoreView

if TYPE_CHECKING:
    from workbench.model import Side

__all__ = ["Change", "DiffReport", "DiffSource", "GroupSummary", "StoreView", "compute_diff", "iter_changes"]


def compute_diff(source: DiffSource, left: Side, right: Side, *, only_unexpected: bool = False,
                 include_scrubbed: bool = False, limit: int | None = None,
                 sections: Iterable[str] | None = None) -> DiffReport:
    """The diff of two sides. ``limit`` caps the changes kept per group (a config file, a
    service, a table); the rest are counted in ``report.groups[...].more``."""
    report = DiffReport(left=left.ref, right=right.ref)
    started: dict[str, float] = {}
    for item in iter_changes(source, left, right, include_scrubbed=include_scrubbed, limit=limit,
                             sections=sections, report=report, timings=started):
        report.add(item)
    return report.only_unexpected() if only_unexpected else report


def iter_changes(source: DiffSource, left: Side, right: Side, *, include_scrubbed: bool = False,
                 limit: int | None = None, sections: Iterable[str] | None = None, report: DiffReport | None = None,
                 timings: dict[str, float] | None = None) -> Iterator[Change]:
    """Stream the changes; when ``report`` is given, its groups, stores and timings are filled in."""
    from workbench.diff.values import Shower

    wanted = list(sections) if sections is not None else list(SECTIONS)
    bad = [s for s in wanted if s not in SECTIONS]
    if bad:
        from workbench.errors import InvalidInput
        raise InvalidInput(f"unknown diff section {bad[0]!r}.", f"Use one or more of: {', '.join(SECTIONS)}.")
    shower = Shower(source.secrets, source.redact)
    groups = report.groups if report is not None else []
    for section in SECTIONS:
        if section not in wanted:
            continue
        t0 = time.perf_counter()
        if section == "config":
            yield from _config(source, left, right, shower, limit, groups)
        elif section == "services":
            yield from _services(source, left, right, shower, limit, groups)
        else:
            yield from _data(source, left, right, shower, limit, include_scrubbed, groups, report)
        if report is not None:
            report.seconds[section] = time.perf_counter() - t0


def _config(source: DiffSource, left: Side, right: Side, shower: Any, limit: int | None,
            groups: list[GroupSummary]) -> Iterator[Change]:
    from workbench.diff.config import ConfigDiff

    if not source.config_files:
        return
    d = ConfigDiff(source.config_files, left.config_root, right.config_root, shower, limit)
    try:
        yield from d.changes()
    finally:
        groups.extend(d.groups)


def _services(source: DiffSource, left: Side, right: Side, shower: Any, limit: int | None,
              groups: list[GroupSummary]) -> Iterator[Change]:
    from workbench.diff.services import ServicesDiff

    described = None
    if source.describe is not None and left.snapshot is None and right.snapshot is None:
        a, b = source.describe(left), source.describe(right)   # a snapshot has no containers
        if a is not None and b is not None:
            described = (a, b)
    d = ServicesDiff(left, right, shower, limit, described=described)
    try:
        yield from d.changes()
    finally:
        groups.extend(d.groups)


def _data(source: DiffSource, left: Side, right: Side, shower: Any, limit: int | None, include_scrubbed: bool,
          groups: list[GroupSummary], report: DiffReport | None) -> Iterator[Change]:
    from workbench.diff.kinds import KINDS, DataOptions

    opts = DataOptions(include_scrubbed=include_scrubbed, limit=limit, shower=shower)
    names = list(left.store_locations) + [n for n in right.store_locations if n not in left.store_locations]
    for name in names:
        a, b = left.store_locations.get(name), right.store_locations.get(name)
        view = source.stores.get(name) or StoreView("unknown")
        info: dict[str, Any] = {"type": view.kind, "left": a, "right": b}
        if report is not None:
            report.stores[name] = info
        if a is None or b is None:
            yield Change("data", name, "added" if a is None else "removed", left=a, right=b, store=name,
                         schema=True)
            continue
        mine: list[GroupSummary] = []
        try:
            kind = KINDS.get(view.kind)
            if kind is None:
                mine.append(GroupSummary("data", name, status="skipped",
                                         note=f"no row diff for {view.kind} stores yet"))
            else:
                yield from kind.differ(name, view, left, right, opts, mine)
        finally:
            groups.extend(mine)
            info["same"] = all(g.status == "same" for g in mine)
