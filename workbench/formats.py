"""Ages, sizes and durations as people read them: one way, for the CLI and the screen.

Pure functions: the time "now" is passed in.
"""

from __future__ import annotations


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
