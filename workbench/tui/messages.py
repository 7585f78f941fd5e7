"""What the screen's gateway tells it: messages named as past events.

Plain dataclasses (no Textual here): the gateway posts them from its threads, the screen
wraps each in one Textual message and handles it in its own thread. ``can_replace`` lets a
flood of one kind collapse into the newest. An ``OperationDone`` knows its own summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from workbench.formats import duration

Severity = Literal["information", "warning", "error"]


class Event:
    def can_replace(self, other: Event) -> bool:
        """Whether this event makes ``other`` (queued, not yet handled) useless."""
        return False


@dataclass
class WorkspaceRead(Event):
    """The environments and the journal, as read by the poller."""

    envs: list[Any]
    journal: list[Any]
    pending: list[Any] = field(default_factory=list)
    recovered: list[Any] = field(default_factory=list)
    checks: list[Any] = field(default_factory=list)   # the latest result of each check on each environment


@dataclass
class WorkspaceUnreadable(Event):
    """The poller could not read the workspace (said once per distinct problem)."""

    error: str


@dataclass
class DiffComputed(Event):
    """A new diff of ``left`` against ``right`` (from a refresh or from the watch)."""

    left: str
    right: str
    report: Any
    generation: int

    def can_replace(self, other: Event) -> bool:
        # A flood of watch updates collapses into the newest one.
        return isinstance(other, DiffComputed) and other.left == self.left and other.right == self.right


@dataclass
class DiffFailed(Event):
    left: str
    right: str
    message: str
    generation: int


@dataclass
class ViewsBuilt(Event):
    """The diff pane's views of a large report, built off the screen's thread."""

    views: Any
    generation: int

    def can_replace(self, other: Event) -> bool:
        return isinstance(other, ViewsBuilt)


@dataclass
class StepReported(Event):
    """An operation under way reached a new step (the engine's progress callback)."""

    op: str
    env: str
    step: str

    def can_replace(self, other: Event) -> bool:
        return isinstance(other, StepReported)


@dataclass
class PreviewLoaded(Event):
    """What a promote would commit (read before the promote dialog opens)."""

    env: str
    files: list[str]
    diff_text: str
    error: str | None = None


@dataclass
class OperationFailed(Event):
    """An operation was refused or failed; ``error`` is the engine's message and hint."""

    op: str
    env: str
    error: str
    severity: Severity = "error"


@dataclass
class OperationDone(Event):
    """An operation that changes the workspace succeeded. Subclasses name what happened
    and say it in words (``undo_key`` is the key that undoes a reset)."""

    op: str
    env: str
    result: Any
    seconds: float

    @property
    def took(self) -> str:
        return duration(self.seconds)

    def summary(self, undo_key: str) -> str:
        return f"{self.op} {self.env}: done in {self.took}."


class CloneForked(OperationDone):
    """``result``: the new clone's EnvInfo."""

    def summary(self, undo_key: str) -> str:
        return f"{self.env} forked in {self.took}: its own branch, services and scrubbed data."


class SnapshotTaken(OperationDone):
    """``result``: the SnapshotInfo."""

    def summary(self, undo_key: str) -> str:
        return f"snapshot {self.env}@{self.result.name} taken in {self.took}."


class CloneReset(OperationDone):
    """``result``: the SnapshotInfo the clone was reset to."""

    def summary(self, undo_key: str) -> str:
        return f"{self.env} reset to {self.result.name} in {self.took}. Press {undo_key} to undo."


class ResetUndone(OperationDone):
    """The clone is back as it was before its last reset."""

    def summary(self, undo_key: str) -> str:
        return f"{self.env} is back as it was before the reset ({undo_key} again redoes it)."


class ClonePromoted(OperationDone):
    """``result``: the PromoteResult (commit, branch, merged_into)."""

    def summary(self, undo_key: str) -> str:
        r = self.result
        merged = f", merged into {r.merged_into}" if r.merged_into else ""
        return f"committed {r.commit[:10]} on {r.branch}{merged}."


class CloneDestroyed(OperationDone):
    """``result``: notes for the user (e.g. a branch that was kept)."""

    def summary(self, undo_key: str) -> str:
        return f"{self.env} destroyed." + "".join(f" {note}" for note in self.result or [])


class ServicesStarted(OperationDone):
    def summary(self, undo_key: str) -> str:
        return f"{self.env} started."


class ServicesStopped(OperationDone):
    def summary(self, undo_key: str) -> str:
        return f"{self.env} stopped."


class ServicesRestarted(OperationDone):
    def summary(self, undo_key: str) -> str:
        return f"{self.env} restarted in {self.took}: its services read their settings again."


# --- the incident: checks, prod's drift, the post-mortem ---------------------------------

class ChecksRun(OperationDone):
    """``result``: the CheckResults of the run (the environment's and prod's)."""

    def summary(self, undo_key: str) -> str:
        mine = [r for r in self.result or [] if r.env == self.env]
        failing = [r.name for r in mine if not r.passed]
        if not failing:
            return f"every check passes on {self.env} ({len(mine)})."
        return f"{len(failing)} of {len(mine)} checks fail on {self.env}: {', '.join(failing)}."


@dataclass
class DriftCounted(Event):
    """The poller's look at prod's drift (every few seconds): how much, in words."""

    count: int
    summary: str

    def can_replace(self, other: Event) -> bool:
        return isinstance(other, DriftCounted)


@dataclass
class DriftLoaded(Event):
    """Prod's drift, read for the drift view: its lines (masked), or why it could not be read."""

    lines: list[str]
    count: int = 0
    error: str | None = None


@dataclass
class ReportWritten(Event):
    """The post-mortem, written: where, and its Markdown (masked)."""

    path: str
    text: str
    error: str | None = None
