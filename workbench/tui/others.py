"""What other people do to the environment you look at: notices, not errors.

Two engineers share a workspace. When one resets or destroys the clone the other is
looking at, the other's live diff fails for a moment (its files were swapped or removed
under it). That is news, not a failure: the screen says who did what, and keeps quiet
about a diff that failed because of it. Pure functions over journal entries; no Textual.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from workbench.formats import age

SETTLE_SECONDS = 3.0
"""A diff that fails this soon after an operation on its clone ended was failed by it."""
UNDER_THE_DIFF = frozenset({"reset", "undo-reset", "destroy"})
"""The operations that swap or remove a clone's files under a diff that is reading them."""


def person(entry: Any) -> str:
    return f"{entry.user}@{entry.host}"


def what_they_did(entry: Any) -> str:
    """``bob@jump reset b1 to s1``: one finished operation, in words."""
    env, args = entry.env or "the workspace", entry.args or {}
    done = {
        "reset": f"reset {env} to {args.get('snapshot', 'a snapshot')}",
        "undo-reset": f"undid the last reset of {env}",
        "destroy": f"destroyed {env}",
        "start": f"started {env}",
        "stop": f"stopped {env}",
        "restart": f"restarted {env}",
        "snapshot": f"took the snapshot {env}@{args.get('snapshot', '?')}",
        "promote": f"promoted {env}",
        "fork": f"forked {env} from {args.get('source', '?')}",
    }.get(entry.op, f"ran {entry.op} on {env}")
    outcome = "" if entry.outcome in ("ok", "completed-by-recovery") else f" ({entry.outcome})"
    return f"{person(entry)} {done}{outcome}"


def news(entries: Iterable[Any], known: set[int], me: str, looking_at: str | None) -> list[Any]:
    """Operations on ``looking_at`` that someone else finished and that are not in ``known``
    (the entries already seen or announced), oldest first."""
    return sorted((e for e in entries if e.id not in known and e.outcome != "running" and e.env == looking_at
                   and e.op != "prepare-ready" and person(e) != me), key=lambda e: e.id)


def explains_failure(entries: Iterable[Any], env: str, failed_at: float) -> Any | None:
    """An operation on ``env`` that was under way when its diff failed, or had just ended:
    the failure is its doing (files swapped or removed under the diff), not a fault."""
    for entry in entries:
        if entry.env != env or entry.op not in UNDER_THE_DIFF:
            continue
        if entry.outcome == "running" or (entry.finished_at and entry.finished_at >= failed_at - SETTLE_SECONDS):
            return entry
    return None


def while_busy(entry: Any, me: str, now: float) -> str:
    """What the diff pane says while someone's operation on the clone explains a failed diff."""
    who = "you" if person(entry) == me else person(entry)
    when = "now" if entry.outcome == "running" else f"{age(entry.finished_at, now)} ago"
    return f"{entry.env}: {entry.op} by {who} ({when}); the diff follows when it settles"
