"""Whether an environment's services run with what its worktree says: "restart needed".

A service reads its settings when it starts. When a config file (the ``config_files`` of
``repro.yaml``) or ``repro.yaml`` itself changed in the worktree after the services
started, what runs is not what the files say: the screen and ``status`` say that a
restart is needed (``repro-tui restart ENV``). Cheap enough to ask at every refresh: a few
``stat`` calls, no file read.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from workbench.spec import SPEC_FILE


def changed_since_start(worktree: Path, patterns: list[str], started: Iterable[float | None]) -> list[str]:
    """The files (relative to ``worktree``) changed after the earliest of the services'
    start times ``started``; empty when no service runs (or none says when it started)."""
    times = [t for t in started if t]
    if not times:
        return []
    from workbench.diff.config import matched_files

    since = min(times)
    files = {**matched_files(worktree, patterns), SPEC_FILE: worktree / SPEC_FILE}
    changed = []
    for rel, path in sorted(files.items()):
        try:
            if path.stat().st_mtime > since:
                changed.append(rel)
        except OSError:
            continue
    return changed
