"""One table of store kinds: how the data of each kind is diffed, and how a change in it
is noticed cheaply (the watch loop's token). A new kind of store is a new row."""

from __future__ import annotations

import os
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

    a, b = left.store_locations[name], right.store_locations[name]
    options = Options(store=name, scrubbed=view.scrubbed, include_scrubbed=opts.include_scrubbed, limit=opts.limit,
                      shower=opts.shower, left_immutable=left.snapshot is not None or _quiet_wal(a),
                      right_immutable=right.snapshot is not None or _quiet_wal(b))
    yield from diff_files(a, b, options, groups)


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
