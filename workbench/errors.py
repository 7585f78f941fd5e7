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
