"""Errors meant for people: what happened, what to do, and the exit code."""

from __future__ import annotations


class ReproError(Exception):
    """A failure the user can act on. ``code`` is the process exit code."""

    code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class Refused(ReproError):
    """A valid request that cannot be done (exit 1)."""

    code = 1


class InvalidInput(ReproError):
    """Bad input: a bad name, bad arguments, a broken repro.yaml (exit 2)."""

    code = 2


class NotFound(Refused):
    """An environment, snapshot, service or store that does not exist."""


class ProdReadOnly(Refused):
    """An attempt to change prod."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"prod is read-only: {what} is only possible on a clone.",
            "Fork prod first: repro-tui fork prod NAME",
        )


class BackendError(Refused):
    """A service could not be started, stopped or reached."""


class Interrupted(ReproError):
    code = 130


def system_error(exc: BaseException) -> ReproError:
    """What the machine refused (a permission, a read-only or full disk, a missing file), as
    one sentence naming the path and what to do."""
    import errno
    import sqlite3

    if isinstance(exc, sqlite3.Error):
        text = str(exc)
        if "readonly" in text or "read-only" in text:
            return Refused("the workspace's state (.repro/state.db) is read-only here: nothing was changed.",
                           "Check the permissions of .repro/ and its files (ls -l .repro), or that the disk is "
                           "not mounted read-only.")
        if "disk is full" in text:
            return Refused("no space left for the workspace's state (.repro/state.db).",
                           "Free some space on that disk (df -h shows it), then try again.")
        return Refused(f"the workspace's state (.repro/state.db) could not be used: {text}.",
                       "Check .repro/state.db; repro-tui recover rolls back what was cut off.")
    if isinstance(exc, OSError):
        path = exc.filename or ""
        what = f" {path}" if path else ""
        if exc.errno in (errno.EACCES, errno.EPERM):
            return Refused(f"permission denied:{what}.",
                           f"Check who owns it and its mode (ls -ld {path or '.'}); repro-tui runs as you.")
        if exc.errno == errno.EROFS:
            return Refused(f"the disk is read-only:{what}.", "Mount it read-write, or work in another folder.")
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return Refused(f"no space left on the disk:{what}.", "Free some space (df -h shows it), then try again.")
        if exc.errno == errno.ENOENT:
            return Refused(f"no such file or folder:{what}.", "It may have been moved or deleted meanwhile.")
        return Refused(f"{exc.strerror or exc}:{what}.", "Check the path and try again.")
    return ReproError(str(exc))
