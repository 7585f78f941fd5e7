"""The journal: every operation that changes a workspace is a transaction, and one cut
off half way is recovered.

An operation runs under the writer lock. Its intent (its name, its environment and the
facts recovery needs) is written before its first step, each step is timed as it ends,
and its outcome is written last. When it fails, the operation's own ``undo`` rolls back
what its steps made; when the process dies instead (a crash, ``kill -9``, a power cut),
the entry stays ``running`` and the next writer rolls it back or finishes it, by the
same ``undo``, found in the operation table by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.errors import Interrupted, Refused, ReproError
from workbench.lock import WriterLock
from workbench.model import JournalEntry
from workbench.stores.base import is_disk_full

if TYPE_CHECKING:
    from workbench.ops.base import Operation
    from workbench.workspace import Workspace

Progress = Callable[[str], None]
ROLLBACK_FAILED = "failed (could not roll back: "  # an error, not an outcome: tried again


@dataclass
class Recovered:
    """An operation found cut off, and what recovery did: its outcome (rolled back or
    completed), or None with the reason it could not be recovered yet."""

    entry: JournalEntry
    outcome: str | None
    problem: str = ""

    @property
    def done(self) -> bool:
        return self.outcome is not None

    def sentence(self) -> str:
        e = self.entry
        if self.outcome is None:
            return (f"{e.op} of {e.env} had been cut off and could not be recovered yet ({self.problem}); "
                    "fix that, then run: repro-tui recover")
        return f"{e.op} of {e.env} had been cut off; it was {self.outcome.replace('-', ' ')}"


class Txn:
    """One journaled operation under way: its timed steps and the facts recovery needs."""

    def __init__(self, journal: Journal, jid: int, op: str, args: dict[str, Any], progress: Progress | None) -> None:
        self.journal, self.jid, self.op, self.args = journal, jid, op, args
        self._progress = progress
        self.message: str | None = None

    def note(self, **args: Any) -> None:
        """Record facts that recovery needs (written before the step they describe)."""
        self.args.update(args)
        self.journal.state.update_args(self.jid, self.args)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        if self._progress:
            self._progress(name)
        t0 = time.perf_counter()
        yield
        self.journal.state.add_step(self.jid, name, time.perf_counter() - t0)
        fault(self.op, name)

    def progress(self, text: str) -> None:
        if self._progress:
            self._progress(text)


def fault(op: str, point: str) -> None:
    """Tests name a step (``REPRO_FAULT=op:step``) to be killed at, to prove recovery."""
    wanted = os.environ.get("REPRO_FAULT")
    if wanted and wanted == f"{op}:{point}":
        sig = getattr(signal, "SIG" + os.environ.get("REPRO_FAULT_SIGNAL", "KILL"))
        os.kill(os.getpid(), sig)


@contextmanager
def no_step(_name: str) -> Iterator[None]:
    """A step outside a transaction (recovery re-runs steps without journaling them)."""
    yield


class Journal:
    """Runs operations as transactions and recovers the ones that were cut off."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.state = ws.state
        self.lock = WriterLock(ws.repro_dir / "lock")

    # running ------------------------------------------------------------------------------
    def run(self, op: Operation) -> Any:
        """Check, then run the operation's steps as one transaction, then what it does after
        the lock is released (a background ready copy, the result to return)."""
        self._checked(op)
        op.prepare()
        with self.transaction(op) as txn:
            result = op.run(txn)
        result = op.after(result)
        self.checks_after(op)
        return result

    def _checked(self, op: Operation) -> None:
        """What the operation needs, checked before anything is written: its own ``check``,
        and the environment's services read when its steps use them."""
        op.check()
        if op.uses_services:
            ctx = self.ws.context(op.env)
            if ctx.kind == "clone" and not ctx.worktree.is_dir():
                raise Refused(f"{op.env}'s worktree {ctx.worktree} is gone (deleted by hand?): its services cannot "
                              "run without it.", f"Destroy the clone and fork it again: repro-tui destroy {op.env} "
                              f"--force && repro-tui fork prod {op.env}")

    def checks_after(self, op: Operation) -> None:
        """The checks of repro.yaml, after an operation that (re)starts an environment's
        services. Here, not in each operation: once the writer lock is released and the
        operation is over, so a check that fails or hangs never holds the lock or rolls back
        the fork; an operation asks for it with ``checks_after``."""
        if not op.checks_after or not self.ws.spec.checks:
            return
        from workbench.ops.check import Check

        try:
            self.run(Check(self.ws, op.env, trigger=op.name, progress=op.progress))
        except ReproError as exc:   # the operation is done: a check that cannot run is said, not raised
            if op.progress:
                op.progress(f"checks not run: {exc.message}")

    @contextmanager
    def transaction(self, op: Operation) -> Iterator[Txn]:
        """The operation's ``check`` runs again under the lock: what was checked before waiting
        for it (the name is free, the clone exists) may have changed meanwhile, and an
        operation that failed on that would roll back what the other writer made."""
        name = op.name
        self.lock.acquire(name, on_wait=op.progress)
        try:
            self._recover()
            self._checked(op)
            jid = self.state.begin(name, op.env, op.args())   # names and ids only: no secret
            txn = Txn(self, jid, name, dict(op.args()), op.progress)
            try:
                yield txn
            except BaseException as exc:
                message = (str(exc) if isinstance(exc, ReproError) else f"{type(exc).__name__}: {exc}")
                if isinstance(exc, KeyboardInterrupt):
                    message = "interrupted"
                outcome = self.roll_back(name, txn.args)
                if not outcome.startswith(ROLLBACK_FAILED):  # else left pending: the next writer tries again
                    self.state.finish(jid, outcome, self.ws.redactor.text(message, op.env))
                if isinstance(exc, KeyboardInterrupt):
                    raise Interrupted(f"{name} was interrupted; {outcome.replace('-', ' ')}.",
                                      "Nothing was left half made.") from None
                if is_disk_full(exc):
                    raise self.no_space(name, outcome) from None
                raise
            else:
                self.state.finish(jid, "ok", self.ws.redactor.text(txn.message, op.env) if txn.message else None)
        finally:
            self.lock.release()

    def no_space(self, op: str, outcome: str) -> Refused:
        try:
            free = f"{shutil.disk_usage(self.ws.repro_dir).free / 1048576:.1f} MB free"
        except OSError:
            free = "full"
        done = ("what it had made is removed by the next command once there is room" if outcome.startswith("failed")
                else f"it was {outcome.replace('-', ' ')}: nothing was left half made")
        return Refused(f"no space left on the disk that holds {self.ws.repro_dir} ({free}): the {op} stopped and "
                       f"{done}.",
                       "Free some space on that disk (df -h shows it), or delete snapshots you no longer need "
                       "(repro-tui snapshot CLONE --delete NAME), then try again.")

    def roll_back(self, op: str, args: dict[str, Any]) -> str:
        """The operation's own undo, found in the table by name; a second Ctrl-C cannot cut it."""
        from workbench.ops import OPERATIONS

        kind = OPERATIONS.get(op)
        if kind is None:
            return "failed"
        old = None
        if threading.current_thread() is threading.main_thread():
            old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return kind.undo(self.ws, args)
        except Exception as exc:  # the rollback itself failed: say so, the next writer tries again
            return f"{ROLLBACK_FAILED}{exc})"
        finally:
            if old is not None:
                signal.signal(signal.SIGINT, old)

    # recovery -----------------------------------------------------------------------------
    def _cut_off(self) -> list[JournalEntry]:
        """Pending entries whose process is gone (a live background helper is not cut off)."""
        from workbench.ops import OPERATIONS

        out = []
        for entry in self.state.pending():
            kind = OPERATIONS.get(entry.op)
            if kind is not None and kind.still_running(entry):
                continue
            out.append(entry)
        return out

    def pending(self) -> list[JournalEntry]:
        """Operations that were cut off and wait for recovery (shown by readers)."""
        out = self._cut_off()
        return out if (out and self.lock.is_free()) else []

    def _recover(self) -> list[Recovered]:
        """Roll back or finish every entry that was cut off; what happened to each. One that
        cannot be recovered now (an engine unreachable) stays pending for the next writer."""
        from workbench.ops import OPERATIONS

        done = []
        for entry in self._cut_off():
            kind = OPERATIONS.get(entry.op)
            outcome = self.roll_back(entry.op, entry.args)
            if outcome.startswith(ROLLBACK_FAILED):
                done.append(Recovered(entry, None, outcome[len(ROLLBACK_FAILED):].rstrip(")")))
                continue
            self.ws.ready.discard_partial(entry.env)
            self.state.finish(entry.id, outcome, kind.recovered_message(entry) if kind else
                              f"{entry.op} was cut off; recovered by the next command")
            done.append(Recovered(entry, outcome))
        return done

    def try_recover(self) -> list[Recovered]:
        """Recover what was cut off if nobody is changing the workspace right now;
        never waits (readers call it, and readers never wait)."""
        if not self.state.pending():
            return []
        try:
            self.lock.acquire("recover", timeout=0)
        except Refused:
            return []
        try:
            return self._recover()
        finally:
            self.lock.release()

    def recover(self) -> list[Recovered]:
        """Take the lock just to recover whatever was cut off; what happened to each."""
        self.lock.acquire("recover")
        try:
            return self._recover()
        finally:
            self.lock.release()


def pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
