"""The operations: one table that the journal, recovery, the CLI and the screen read.

Each row is an ``Operation`` class (``workbench.ops.base``): check what it needs, run its
journaled steps, undo a step. The journal finds an operation's undo here by name when it
rolls back or recovers it; the CLI and the screen run operations through the workspace's
methods, which build these rows. Adding an operation is adding a module and a row.
"""

from __future__ import annotations

from workbench.ops.base import Operation
from workbench.ops.check import Check
from workbench.ops.delete_snapshot import DeleteSnapshot
from workbench.ops.destroy import Destroy
from workbench.ops.fork import Fork
from workbench.ops.promote import Promote
from workbench.ops.ready import PrepareReady
from workbench.ops.reset import Reset
from workbench.ops.restart import Restart
from workbench.ops.snapshot import Snapshot
from workbench.ops.start import Start
from workbench.ops.stop import Stop
from workbench.ops.undo_reset import UndoReset

OPERATIONS: dict[str, type[Operation]] = {
    op.name: op
    for op in (Fork, Snapshot, DeleteSnapshot, Reset, UndoReset, Promote, Destroy, Start, Stop, PrepareReady,
               Restart, Check)
}

__all__ = ["OPERATIONS", "Operation"]
