"""What the command line writes: every byte through the workspace's redactor.

``Out`` writes text or JSON to stdout, ``StepPrinter`` the steps of a long operation to
stderr (on a terminal only), ``fail`` an error as one or two lines (and JSON with
``--json``). Before a workspace is open, a redactor that knows no value still masks
secrets by their names and shapes.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from workbench.errors import ReproError
from workbench.redact import Redactor
from workbench.secrets import SecretPolicy

_C1_ESCAPED = {c: f"\\u{c:04x}" for c in range(0x80, 0xA0)}


def default_redactor() -> Redactor:
    return Redactor(SecretPolicy())


class Out:
    def __init__(self, as_json: bool, stream: TextIO | None = None, redactor: Redactor | None = None) -> None:
        self.as_json = as_json
        self.stream = stream or sys.stdout
        self.redactor = redactor or default_redactor()

    def write(self, text: str) -> None:
        self.stream.write(self.redactor.text(text))

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def write_json(self, data: Any, **dumps: Any) -> None:
        """A JSON document, redacted value by value (a text pass could break its syntax)."""
        dumps.setdefault("indent", 2)
        text = json.dumps(self.redactor.tree(data), default=str, **dumps)
        # JSON escapes C0 controls but may keep C1 ones (U+009B is CSI to some terminals): escaped too
        self.stream.write(text.translate(_C1_ESCAPED) + "\n")

    def emit(self, data: Any, text: Callable[[], object]) -> None:
        """``data`` as JSON with ``--json``; else ``text()`` writes the readable form."""
        if self.as_json:
            self.write_json(data)
        else:
            text()

    def table(self, rows: list[list[str]]) -> None:
        if not rows:
            return
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            self.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() + "\n")


class StepPrinter:
    """Steps with timings on a terminal; nothing when piped."""

    def __init__(self, enabled: bool, redactor: Redactor | None = None) -> None:
        self.enabled = enabled
        self.redactor = redactor or default_redactor()
        self.t0 = time.perf_counter()
        self.last: str | None = None
        self.last_t = self.t0

    def __call__(self, text: str) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        previous = f"\r  ✓ {self.last} ({(now - self.last_t) * 1000:.0f} ms)\033[K\n" if self.last is not None else ""
        self.last, self.last_t = self.redactor.text(text), now
        self._write(f"{previous}  … {self.last}\033[K")

    def done(self) -> None:
        if self.enabled and self.last is not None:
            now = time.perf_counter()
            self._write(f"\r  ✓ {self.last} ({(now - self.last_t) * 1000:.0f} ms)\033[K\n")
            self.last = None

    def _write(self, text: str) -> None:
        """A step shown on the terminal; a terminal that hung up (EIO) never stops the operation."""
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except OSError:
            self.enabled = False


def fail(exc: ReproError, want_json: bool, redactor: Redactor | None = None) -> int:
    """Say what went wrong (and what to do) on stderr; the exit code."""
    r = redactor or default_redactor()
    message, hint = r.text(exc.message), r.text(exc.hint) if exc.hint else None
    sys.stderr.write(f"error: {message}\n")
    if hint:
        sys.stderr.write(f"  {hint}\n")
    if want_json:
        json.dump({"error": {"message": message, "hint": hint, "code": exc.code}}, sys.stdout)
        sys.stdout.write("\n")
    return exc.code
