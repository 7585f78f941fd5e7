"""Ready copies: a copy of a snapshot made in the background, so the next reset is a rename.

A detached helper process (``python -m workbench.ready``) makes it under the clone's
ready lock, journaled as ``prepare-ready``. A reset that comes before it is ready waits
for the lock; a helper cut off half way leaves a ``.tmp-`` folder that recovery removes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from workbench.journal import pid_alive
from workbench.lock import WriterLock
from workbench.names import PROD
from workbench.ops.base import Operation, Progress

if TYPE_CHECKING:
    from workbench.journal import Txn
    from workbench.model import JournalEntry
    from workbench.workspace import Workspace


class ReadyCopies:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    @contextmanager
    def lock(self, env: str, progress: Progress | None = None) -> Iterator[None]:
        lock = WriterLock(self.ws.repro_dir / "ready" / f"{env}.lock")
        lock.path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire(f"ready copy of {env}", timeout=600,
                     on_wait=(lambda _m: progress("waiting for the ready copy")) if progress else None)
        try:
            yield
        finally:
            lock.release()

    def spawn(self, env: str, snapshot: str) -> None:
        """Start the detached helper (or, with ``REPRO_READY=sync``, make the copy now)."""
        ws = self.ws
        if not ws.stores:
            return
        if os.environ.get("REPRO_READY") == "sync":
            self.make(env, snapshot)
            return
        log = ws.run_dir(env)
        log.mkdir(parents=True, exist_ok=True)
        with open(log / "ready.log", "ab") as out:
            subprocess.Popen([sys.executable, "-m", "workbench.ready", str(ws.root), env, snapshot],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, cwd=ws.root)

    def make(self, env: str, snapshot: str) -> bool:
        """Prepare the ready copy of a snapshot (run by the detached helper). Journaled."""
        ws = self.ws
        with self.lock(env):
            if ws.state.env(env) is None:
                return False
            for store in ws.stores.values():
                store.discard_trash(env)
            snap = ws.state.snapshot(env, snapshot)
            if snap is None:
                return False
            todo = [s for s in ws.stores.values() if s.ready_for(env) != snap.id]
            if not todo:
                return True
            jid = ws.state.begin(PrepareReady.name, env, {"env": env, "snapshot": snapshot, "pid": os.getpid()})
            t0 = time.perf_counter()
            try:
                for store in todo:
                    store.make_ready(env, snapshot, snap.id)
            except Exception as exc:
                ws.state.finish(jid, "failed", ws.redactor.text(str(exc), env))
                raise
            ws.state.add_step(jid, "ready copy", time.perf_counter() - t0)
            ws.state.finish(jid, "ok")
            return True

    def discard_partial(self, env: str | None) -> None:
        """A ready copy cut off half way (a reset copying its snapshot, or the helper) leaves a
        half-written folder: remove it, unless a ready copy is being made right now."""
        ws = self.ws
        if not env or env == PROD or ws.state.env(env) is None:
            return
        lock = WriterLock(ws.repro_dir / "ready" / f"{env}.lock")
        if not lock.path.parent.exists():
            return
        from workbench.errors import Refused

        try:
            lock.acquire("discard a cut-off ready copy", timeout=0)
        except Refused:
            return
        try:
            for store in ws.stores.values():
                store.discard_partial_ready(env)
        finally:
            lock.release()


class PrepareReady(Operation):
    """The background helper's journal entry: not run by the journal (the helper holds the
    clone's ready lock, not the writer lock), but recovered like every other row."""

    name = "prepare-ready"
    summary = "make the ready copy of a snapshot in the background"

    def run(self, txn: Txn) -> None:
        raise NotImplementedError("made by ReadyCopies.make in the background helper")

    @classmethod
    def undo(cls, ws: Workspace, args: dict[str, Any]) -> str:
        return "failed"   # recovery then removes the half-made copy; the next reset makes it again

    @classmethod
    def still_running(cls, entry: JournalEntry) -> bool:
        return pid_alive(entry.args.get("pid"))

    @classmethod
    def recovered_message(cls, entry: JournalEntry) -> str:
        return "the ready copy was cut off; it is made again on the next reset"
