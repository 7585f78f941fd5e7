"""What the screen's workers tell it: messages named as past events.

Workers run engine calls in threads and never touch a widget; they post one of these,
and the screen updates itself in its own thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message


@dataclass
class WorkspaceRead(Message):
    """The environments and the journal, as read by the poller."""

    envs: list[Any]
    journal: list[Any]
    pending: list[Any] = field(default_factory=list)


@dataclass
class DiffComputed(Message):
    """A new diff of ``left`` against ``right`` (from a refresh or from the watch)."""

    left: str
    right: str
    report: Any
    generation: int

    def can_replace(self, message: Message) -> bool:
        # A flood of watch updates collapses into the newest one.
        return isinstance(message, DiffComputed) and message.left == self.left and message.right == self.right


@dataclass
class DiffFailed(Message):
    left: str
    right: str
    message: str
    generation: int


@dataclass
class StepReported(Message):
    """An operation under way reached a new step (the engine's progress callback)."""

    op: str
    env: str
    step: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StepReported)


@dataclass
class OperationDone(Message):
    """An operation that changes the workspace succeeded. Subclasses name what happened."""

    op: str
    env: str
    result: Any
    seconds: float


class CloneForked(OperationDone):
    """``result``: the new clone's EnvInfo."""


class SnapshotTaken(OperationDone):
    """``result``: the SnapshotInfo."""


class CloneReset(OperationDone):
    """``result``: the SnapshotInfo the clone was reset to."""


class ResetUndone(OperationDone):
    """The clone is back as it was before its last reset."""


class ClonePromoted(OperationDone):
    """``result``: the PromoteResult (commit, branch, merged_into)."""


class CloneDestroyed(OperationDone):
    """``result``: notes for the user (e.g. a branch that was kept)."""


class ServicesStarted(OperationDone):
    pass


class ServicesStopped(OperationDone):
    pass


@dataclass
class OperationFailed(Message):
    """An operation was refused or failed; ``error`` is the engine's message and hint."""

    op: str
    env: str
    error: str
    severity: str = "error"


@dataclass
class WorkspaceUnreadable(Message):
    """The poller could not read the workspace (said once per distinct problem)."""

    error: str


@dataclass
class LogsRead(Message):
    lines: list[str]
    error: str | None = None


@dataclass
class ViewsBuilt(Message):
    """The diff pane's views of a large report, built off the screen's thread."""

    views: Any
    generation: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ViewsBuilt)


@dataclass
class PreviewLoaded(Message):
    """What a promote would commit (read before the promote dialog opens)."""

    env: str
    files: list[str]
    diff_text: str
    error: str | None = None
