"""One writer at a time: an OS lock (flock) that the kernel releases when its holder dies."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from workbench.errors import Refused


class WriterLock:
    """Exclusive lock on ``.repro/lock``. The file holds who has it, for messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def holder(self) -> dict | None:
        try:
            text = self.path.read_text()
            return json.loads(text) if text.strip() else None
        except (OSError, ValueError):
            return None

    def is_free(self) -> bool:
        """Whether nobody holds the lock right now (a probe that does not keep it)."""
        if self._fd is not None:
            return False
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o660)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return True
        finally:
            os.close(fd)

    def acquire(self, what: str, timeout: float | None = None, on_wait: Callable[[str], None] | None = None) -> None:
        if timeout is None:
            timeout = float(os.environ.get("REPRO_LOCK_TIMEOUT", "60"))
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o660)
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                holder = self.holder() or {}
                desc = f"{holder.get('op', 'an operation')} (pid {holder.get('pid', '?')})"
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise Refused(
                        f"the workspace is busy: {desc} is changing it.",
                        "Wait for it to finish and try again (readers such as list and diff still work).",
                    ) from None
                if on_wait and not told:
                    on_wait(f"waiting for {desc} to finish ...")
                    told = True
                time.sleep(0.05)
        try:  # who holds it, for messages only: a full disk must not stop the lock (nor its rollback)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "op": what, "since": time.time()}).encode(), 0)
        except OSError:
            pass
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
