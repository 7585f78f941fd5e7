"""The demo: a small shop with a bug in prod, ready to fork, diff, fix and promote.

``build_demo(path)`` makes the workspace; ``DEMO_BUG`` says which orders fail and which
setting fixes them (for the tests and the README); ``default_demo_path()`` picks a new
folder under the user's data directory.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

from workbench.demo.build import build_demo
from workbench.demo.story import DEMO_BUG, DEMO_PORT

__all__ = ["DEMO_BUG", "DEMO_PORT", "build_demo", "default_demo_path"]


def default_demo_path() -> Path:
    """A folder that does not exist yet: ``<user data dir>/repro-tui/demo-N``, N counting up."""
    base = platformdirs.user_data_path("repro-tui", appauthor=False)
    n = 1
    while (base / f"demo-{n}").exists():
        n += 1
    return base / f"demo-{n}"
