"""Who a clone belongs to, and whose reset an undo takes back.

A clone's owner is the user who forked it (recorded with the clone, shown by ``list``,
``status`` and the screen). Resets are shared: anyone may reset a clone, but an undo takes
back only one's own last reset. When someone else has reset it (or undone a reset) since,
the undo is refused, saying who and when: taking back their reset would throw away the
state they reset to, and the state the undo would bring back may not be one's own.

People are named as the journal names them, ``user@host``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from workbench.errors import Refused
from workbench.formats import age
from workbench.state import current_user

if TYPE_CHECKING:
    from workbench.model import JournalEntry
    from workbench.state import State

SWAPS = ("reset", "undo-reset")
"""The operations that swap a clone's data (and that an undo would take back)."""
COUNTED = ("ok", "completed-by-recovery", "running")


def me() -> str:
    """This process's user, as the journal names people: ``user@host``."""
    user, host = current_user()
    return f"{user}@{host}"


def who(entry: JournalEntry) -> str:
    return f"{entry.user}@{entry.host}"


def last_swap(state: State, env: str) -> JournalEntry | None:
    """The newest reset or undo of ``env``: done, finished by recovery, or under way."""
    return state.last_of(env, SWAPS, COUNTED)


def undo_refusal(env: str, by: str | None, at: float | None, now: float, mine: str | None = None) -> Refused | None:
    """Why this user may not undo the last reset of ``env`` (None: they may). ``by`` and ``at``
    say who made the newest reset or undo of the clone, and when."""
    if by is None or by == (mine or me()):
        return None
    user = by.split("@", 1)[0]
    when = f"at {time.strftime('%H:%M:%S', time.localtime(at))}, {age(at, now)} ago" if at else "since"
    return Refused(f"{by} was the last to reset {env} ({when}): an undo takes back only your own reset, "
                   "and would throw theirs away.",
                   f"Reset it yourself (repro-tui reset {env} [SNAPSHOT]), or ask {user}.")
