"""The shape every operation has: check what it needs, run its journaled steps, undo a step.

An operation is one row of the table in ``workbench.ops``. The journal runs it:

1. ``check()`` before the writer lock, and again under it (what was true before waiting
   may not be any more); ``prepare()`` once, before the lock, for costly checks;
2. ``run(txn)`` under the lock, each step in ``txn.step(...)``, the facts recovery needs
   written with ``txn.note(...)`` before the step they describe;
3. ``after(result)`` once the lock is released (a background ready copy; the value the
   CLI and the screen get).

When ``run`` fails, or the process dies in it, ``undo(ws, args)`` rolls back what was
made, or finishes what must be finished, from the journal's facts alone. Every write the
steps make goes through the workspace's fence; every message through its redactor.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from workbench.journal import Txn
    from workbench.model import JournalEntry
    from workbench.workspace import Workspace

Progress = Callable[[str], None]


class Operation(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]          # what it does, in a few words
    checks_after: ClassVar[bool] = False   # its environment's services (re)start: the journal runs the checks
    # its steps read the environment's services (a clone's own repro.yaml): the journal reads
    # them before the first step, so a file broken in the clone's worktree is an error that
    # changes nothing, never an operation cut off half way that recovery cannot finish
    uses_services: ClassVar[bool] = False

    def __init__(self, ws: Workspace, env: str, progress: Progress | None = None) -> None:
        self.ws = ws
        self.env = env
        self.progress = progress

    def args(self) -> dict[str, Any]:
        """What the journal records at the start: names and ids recovery needs, never a secret."""
        return {"env": self.env}

    def check(self) -> None:  # noqa: B027 - most operations check something; some need nothing
        """Raise a ReproError when the operation cannot run now (called twice: see above)."""

    def prepare(self) -> None:  # noqa: B027
        """Costly checks, once, before the lock (e.g. scrub rules against prod's schema)."""

    @abstractmethod
    def run(self, txn: Txn) -> Any:
        """The journaled steps."""

    def after(self, result: Any) -> Any:
        """Runs once the lock is released; returns what the caller gets."""
        return result

    @classmethod
    def undo(cls, ws: Workspace, args: dict[str, Any]) -> str:
        """Roll back (``rolled-back``) or finish (``completed-by-recovery``) a run that failed or
        was cut off, from its journal facts; ``failed`` when there is nothing it can do."""
        return "failed"

    @classmethod
    def still_running(cls, entry: JournalEntry) -> bool:
        """Whether a pending entry is alive rather than cut off (a background helper's)."""
        return False

    @classmethod
    def recovered_message(cls, entry: JournalEntry) -> str:
        return f"{entry.op} was cut off; recovered by the next command"
