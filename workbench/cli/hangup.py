"""A command that changes the workspace outlives its terminal.

Over SSH, a dropped connection or a closed laptop lid hangs up the terminal: the kernel
sends SIGHUP, and every write to the terminal fails from then on. A command that changes
the workspace (fork, reset, destroy, ...) must not stop half way for that. From the moment
it starts, a hang-up points its standard streams at ``/dev/null`` and lets it run to its
end; what it did is in the journal (``repro-tui log``). Its services and background copies run
detached from the terminal, so the hang-up does not reach them either.
"""

from __future__ import annotations

import os
import signal
from types import FrameType

OUTLIVE = frozenset({"fork", "snapshot", "reset", "promote", "destroy", "start", "stop", "restart", "recover"})
"""The subcommands that change the workspace: a hang-up does not stop them."""


def outlive_hangup() -> None:
    """From now on, a hang-up silences this process instead of ending it."""
    signal.signal(signal.SIGHUP, _hung_up)


def _hung_up(_signum: int, _frame: FrameType | None) -> None:
    fd = os.open(os.devnull, os.O_RDWR)
    try:
        for target in (0, 1, 2):
            os.dup2(fd, target)
    finally:
        os.close(fd)
