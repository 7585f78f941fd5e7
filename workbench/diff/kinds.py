"""One table of store kinds: how the data of each kind is diffed, and how a change in it
is noticed cheaply (the watch loop's token). A new kind of store is a new row."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.diff.model import Change, GroupSummary
    from workbench.diff.source import StoreView
    from workbench.model import Side


@dataclass
class DataOptions:
    include_scrubbed: bool
    limit: int | None
    shower: Any                      # workbench.diff.values.Shower


Differ = Callable[[str, "StoreView", "Side", "Side", DataOptions, "list[GroupSummary]"], Iterator["Change"]]
Token = Callable[["StoreView", str], "str | None"]


@dataclass(frozen=True)
class Kind:
    differ: Differ
    token: Token


def _sqlite(name: str, view: StoreView, left: Side, right: Side, opts: DataOptions,
            groups: list[GroupSummary]) -> Iterator[Change]:
    from workbench.diff.sqlite import Options, diff_files

    options = Options(store=name, scrubbed=view.scrubbed, include_scrubbed=opts.include_scrubbed, limit=opts.limit,
                      shower=opts.shower, left_immutable=left.snapshot is not None,
                      right_immutable=right.snapshot is not None)
    yield from diff_files(left.store_locations[name], right.store_locations[name], options, groups)


def _sqlite_token(view: StoreView, location: str) -> str | None:
    from workbench.diff.sqlitepages import store_token

    return store_token(location)


def _files(name: str, view: StoreView, left: Side, right: Side, opts: DataOptions,
           groups: list[GroupSummary]) -> Iterator[Change]:
    from workbench.diff.files import diff_folders

    yield from diff_folders(name, left.store_locations[name], right.store_locations[name], opts.limit, groups)


def _files_token(view: StoreView, location: str) -> str | None:
    from workbench.diff.files import folder_token

    return folder_token(location)


def _postgres(name: str, view: StoreView, left: Side, right: Side, opts: DataOptions,
              groups: list[GroupSummary]) -> Iterator[Change]:
    from workbench.diff.postgres import diff_store

    yield from diff_store(name, view, left, right, opts, groups)


def _postgres_token(view: StoreView, location: str) -> str | None:
    from workbench.diff.postgres import store_token

    return store_token(view, location)


KINDS: dict[str, Kind] = {
    "sqlite": Kind(_sqlite, _sqlite_token),
    "files": Kind(_files, _files_token),
    "postgres": Kind(_postgres, _postgres_token),
}
