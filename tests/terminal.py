"""A program in a real pseudo-terminal, as a user's terminal runs it: what it writes, keys
typed into it, a hang-up. Tests and ``bench/bench_idle.py`` drive the screen with it.

The terminal is the program's controlling terminal (it runs detached from ours), so closing
the terminal's master side hangs up on it exactly as a closed window or a dropped SSH
connection does: the kernel sends SIGHUP and its writes fail from then on.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPRO_TUI = Path(sys.executable).parent / "repro-tui"
ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][A-Z0-9]|\x1b[=>78]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)")


def plain(data: bytes) -> str:
    """What was written, without the escape sequences (text as it was painted, in pieces)."""
    return ESCAPES.sub(b"", data).decode("utf-8", "replace")


class PtyProgram:
    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], cols: int = 80, rows: int = 24) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.master: int | None = master
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True, preexec_fn=_take_terminal)
        os.close(slave)
        self.output = b""
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._closing = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        fd = self.master
        assert fd is not None
        while not self._closing:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:   # the program is gone (EIO)
                return
            if not chunk:
                return
            with self._lock:
                self.output += chunk

    def text(self, since: int = 0) -> str:
        with self._lock:
            return plain(self.output[since:])

    def mark(self) -> int:
        """A position in the output: ``wait_for(..., since=mark)`` looks only at what came after."""
        with self._lock:
            return len(self.output)

    def wait_for(self, needle: str, timeout: float = 30.0, since: int = 0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.text(since)
            if needle in shown:
                return shown
            if self.proc.poll() is not None and needle not in self.text(since):
                time.sleep(0.2)
                if needle in self.text(since):
                    return self.text(since)
                break
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} never appeared (exit code {self.proc.poll()}); the last output:\n"
                             f"{self.text()[-1500:]}")

    def wait_for_any(self, *needles: str, timeout: float = 30.0, since: int = 0) -> str:
        """The first of ``needles`` to appear (steps of an operation may be painted or skipped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.text(since)
            for needle in needles:
                if needle in shown:
                    return needle
            time.sleep(0.02)
        raise AssertionError(f"none of {needles!r} appeared; the last output:\n{self.text()[-1500:]}")

    def select_next(self, clone: str) -> None:
        """↓ in the screen's environment list, until ``clone``'s diff is on screen."""
        mark = self.mark()
        self.type("\x1b[B")
        self.wait_for(f"prod ↔ {clone}", since=mark)

    def bytes_during(self, seconds: float) -> int:
        """How many bytes the program writes to its terminal in ``seconds``."""
        start = self.mark()
        time.sleep(seconds)
        return self.mark() - start

    def type(self, keys: str | bytes) -> None:
        """Keys as one write (one packet over a slow link)."""
        assert self.master is not None
        os.write(self.master, keys.encode() if isinstance(keys, str) else keys)

    def hang_up(self) -> None:
        """Close the terminal: the program gets SIGHUP and its writes fail."""
        master, self.master = self.master, None
        if master is not None:
            self._closing = True
            self._reader.join()
            os.close(master)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait(timeout=10)
        self.hang_up()


def screen(workspace: Path, code: Path = ROOT, **env: str) -> PtyProgram:
    """The installed ``repro-tui`` on ``workspace`` in an 80x24, 256-colour terminal, running the
    code at ``code`` (this checkout); ``env`` adds to (or, empty, clears) its variables."""
    full = {**os.environ, "PYTHONPATH": str(code), "TERM": "xterm-256color", **env}
    full.pop("NO_COLOR", None)
    return PtyProgram([str(REPRO_TUI)], cwd=workspace, env=full)


def _take_terminal() -> None:
    """In the child, after setsid: its standard input (the terminal) becomes its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
