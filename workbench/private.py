"""Private state: nothing repro-tui writes under ``.repro/`` is readable by other users.

A workspace opened by repro-tui sets the process's umask to keep every permission from
"other" (0o007): the state database, the journal, logs, clones' worktrees and data copies
are made for the owner and the group only (a team shares a jump host's workspace through
a group, never the world). The user's own umask is kept for what is not repro-tui's:
prod's services (the demo's) and a merge into prod's checkout.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PRIVATE = 0o007
_lock = threading.Lock()
_user: int | None = None


def user_umask() -> int:
    """The umask the user started repro-tui with."""
    global _user
    with _lock:
        if _user is None:
            current = os.umask(0)
            os.umask(current)
            _user = current
        return _user


def keep_private(repro_dir: Path) -> None:
    """From now on, what this process makes carries no permission for others; and the
    workspace's state folder and its top-level files lose any they had."""
    mask = user_umask()
    os.umask(mask | PRIVATE)
    for path in (repro_dir, *repro_dir.glob("*")):
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode) or not st.st_mode & 0o007 or st.st_uid != os.geteuid():
            continue
        try:
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o007)
        except OSError:
            pass


@contextmanager
def as_the_user() -> Iterator[None]:
    """Make files with the user's own umask for the time of the block (prod's checkout)."""
    mask = user_umask()
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)
