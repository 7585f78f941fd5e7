"""The data diff of a PostgreSQL store.

Both sides of a PostgreSQL store are databases in running servers: prod's, and the
clone's (its live database, or a snapshot's ``db@snap-NAME`` beside it in the same
server). ``workbench.diff.postgres_rows`` compares them by checksums over key ranges on
both servers at once; this module only asks the store's view for the two databases and
fits the result into the report. A diff never starts a container: a side whose server
is not running is a skipped group with a note saying how to start it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from workbench.diff.model import Change, GroupSummary
from workbench.errors import NotFound, Refused

if TYPE_CHECKING:
    from workbench.diff.kinds import DataOptions
    from workbench.diff.source import StoreView
    from workbench.model import Side

#: how long a store's fingerprint is reused by the watch loop (one query per server)
TOKEN_SECONDS = 2.0

_tokens: dict[str, tuple[float, str]] = {}
_lock = threading.Lock()


def diff_store(name: str, view: StoreView, left: Side, right: Side, opts: DataOptions,
               groups: list[GroupSummary]) -> Iterator[Change]:
    """The changes of store ``name`` from ``left`` to ``right``; its groups go to ``groups``."""
    from workbench.diff.postgres_rows import Side as DbSide
    from workbench.diff.postgres_rows import diff_databases

    if view.endpoint is None:
        groups.append(GroupSummary("data", name, status="skipped", note="no server to compare"))
        return
    try:
        a = DbSide(*view.endpoint(left.env, left.snapshot))
        b = DbSide(*view.endpoint(right.env, right.snapshot))
    except (Refused, NotFound) as exc:
        groups.append(GroupSummary("data", name, status="skipped", note=exc.message))
        return
    for side, db in ((left, a), (right, b)):
        if side.snapshot and db.db not in db.server.databases():
            groups.append(GroupSummary("data", name, status="skipped",
                                       note=f"{side.ref}: the snapshot's database {db.db} is missing"))
            return
    changes, found = diff_databases(name, a, b, view.scrubbed, opts.shower, opts.limit,
                                    include_scrubbed=opts.include_scrubbed)
    groups.extend(found)
    yield from changes


def store_token(view: StoreView, location: str) -> str | None:
    """A token that moves when the data at ``location`` changes (the server's WAL position
    and the database's commit count), queried at most every ``TOKEN_SECONDS``."""
    if view.fingerprint is None:
        return None
    now = time.monotonic()
    with _lock:
        cached = _tokens.get(location)
    if cached and now - cached[0] < TOKEN_SECONDS:
        return cached[1]
    token = view.fingerprint(location)
    with _lock:
        _tokens[location] = (now, token)
    return token
