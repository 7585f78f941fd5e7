"""The data diff of a PostgreSQL store.

Both sides of a PostgreSQL store are databases in running servers: prod's, and the
clone's (its live database, or a snapshot's ``db@snap-NAME`` beside it in the same
server). ``workbench.pgdiff`` compares them by checksums over key ranges on both servers
at once; this module only finds the two databases and fits the result into the report.
A diff never starts a container: a side whose server is not running is a skipped group
with a note saying how to start it. The watch loop fingerprints the two databases
through ``store_token`` (registered for the ``postgres`` store type).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from workbench.diff.model import Change, GroupSummary
from workbench.errors import NotFound, Refused

if TYPE_CHECKING:
    from workbench.model import Side

#: how long a store's fingerprint is reused by the watch loop (one query per server)
TOKEN_SECONDS = 2.0

_stores_by_location: dict[str, Any] = {}
_tokens: dict[str, tuple[float, str]] = {}
_lock = threading.Lock()


def diff_store(ws: Any, name: str, left: Side, right: Side, *, scrubbed: dict[str, set[str]],
               include_scrubbed: bool, limit: int | None, shower: Any,
               groups: list[GroupSummary]) -> Iterator[Change]:
    """The changes of store ``name`` from ``left`` to ``right``; its groups go to ``groups``."""
    from workbench.pgdiff import Side as DbSide
    from workbench.pgdiff import diff_databases

    store = ws.stores[name]
    for side in (left, right):
        remember(side.store_locations.get(name), store)
    try:
        a = DbSide(*store.endpoint(left.env, left.snapshot))
        b = DbSide(*store.endpoint(right.env, right.snapshot))
    except (Refused, NotFound) as exc:
        groups.append(GroupSummary("data", name, status="skipped", note=exc.message))
        return
    for side, db in ((left, a), (right, b)):
        if side.snapshot and db.db not in db.server.databases():
            groups.append(GroupSummary("data", name, status="skipped",
                                       note=f"{side.ref}: the snapshot's database {db.db} is missing"))
            return
    changes, found = diff_databases(name, a, b, scrubbed, shower, limit, include_scrubbed=include_scrubbed)
    groups.extend(found)
    yield from changes


# --- fingerprints for the watch loop ------------------------------------------------------

def remember(location: str | None, store: Any) -> None:
    if location:
        with _lock:
            _stores_by_location[location] = store


def store_token(location: str) -> str | None:
    """A token that moves when the data at ``location`` changes (the server's WAL position
    and the database's commit count), queried at most every ``TOKEN_SECONDS``."""
    with _lock:
        store = _stores_by_location.get(location)
        cached = _tokens.get(location)
    if store is None:
        return None
    now = time.monotonic()
    if cached and now - cached[0] < TOKEN_SECONDS:
        return cached[1]
    token = store.fingerprint(location)
    with _lock:
        _tokens[location] = (now, token)
    return token


def _register() -> None:
    from workbench.diff.watch import register_store_token

    register_store_token("postgres", store_token)


_register()

