"""Ages, sizes and durations as people read them, and text made safe for a terminal: one way,
for the CLI and the screen.

Pure functions: the time "now" is passed in.
"""

from __future__ import annotations

import re


def age(ts: float | None, now: float) -> str:
    """How long ago ``ts`` was, in one short unit: ``12s``, ``5m``, ``3h``, ``2d``."""
    if not ts:
        return "-"
    seconds = max(0.0, now - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def duration(seconds: float | None) -> str:
    """How long something took: ``85 ms``, ``1.2 s``, ``2m 05s``."""
    if seconds is None:
        return "…"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s"


def size(n: int | None) -> str:
    """``512 B``, ``1.5 KB``, ``20.0 MB``, ``1.1 GB``."""
    if not n:
        return "0 B"
    value = float(n)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def count(n: int, word: str) -> str:
    """``1 snapshot``, ``3 snapshots``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str, *, drop_ansi: bool = False) -> str:
    """``text`` safe to draw on a terminal: every control character (ESC, BEL, an 8-bit CSI)
    shown as its escape (``\\x1b``), newlines and tabs kept. A value of prod's data, a mail
    subject or a service's output could otherwise drive the user's terminal (set its title,
    write its clipboard with OSC 52, clear it). ``drop_ansi``: colour and cursor sequences
    are removed first (a service's coloured log)."""
    if drop_ansi:
        text = _ANSI.sub("", text)
    return _CONTROL.sub(lambda m: repr(m[0])[1:-1], text)
