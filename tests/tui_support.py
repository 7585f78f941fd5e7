"""What the screen's tests share: a small real workspace, waiting for the screen, reading it.

The workspace is real: a git repository, a repro.yaml with one local HTTP service, a
SQLite store with a scrubbed column and an override, a config file. The screen runs on
it through ``make_app`` exactly as ``repro-tui`` does.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from rich.color import ColorSystem
from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.filter import LineFilter

from tests.conftest import free_port, git
from tests.shop import shop_yaml

FIXED_NOW = 1_767_225_600.0   # 2026-01-01 00:00 UTC: the clock of snapshot tests


def make_workspace(root: Path, port: int | None = None, orders: int = 200) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "repro.yaml").write_text(shop_yaml(port or free_port(), secret=False, uploads=False, scrubbed=("email",)))
    (root / "config").mkdir()
    (root / "config" / "app.yaml").write_text("feature:\n  rounding: floor\ncurrency: EUR\n")
    (root / ".gitignore").write_text("data/\n")
    (root / "data").mkdir()
    db = sqlite3.connect(root / "data" / "shop.db")
    db.executescript("""
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, total REAL, status TEXT);
    """)
    db.executemany("INSERT INTO users VALUES (?, ?, ?)", [(i, f"User {i}", f"user{i}@real.test") for i in range(1, 31)])
    db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)",
                   [(i, 1 + i % 30, i * 1.5, "paid") for i in range(1, orders + 1)])
    db.commit()
    db.close()
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "shop")
    return root


def change_rows_elsewhere(db_path: str, sql: str) -> None:
    """Change the clone's data from another process, as the clone's app would."""
    import sys

    subprocess.run([sys.executable, "-c", "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
                    "db.execute(sys.argv[2]); db.commit()", db_path, sql], check=True)


async def wait_for(pilot: Any, check: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Let the screen run until ``check()`` is truthy (workers post from their threads)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}\n{screen_text(pilot.app)}")
        await pilot.pause(0.05)


def screen_text(app: Any) -> str:
    """What the terminal shows, as text (what a user reads, without colour)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def notifications(app: Any) -> list[str]:
    return [n.message for n in app._notifications]


def freeze_times(root: Path, now: float = FIXED_NOW) -> None:
    """Make every recorded time of the workspace fixed, so ages and durations are stable."""
    db = sqlite3.connect(root / ".repro" / "state.db")
    db.execute("UPDATE envs SET created_at = ?", (now - 7200,))
    db.execute("UPDATE snapshots SET created_at = ? + seq * 60", (now - 3600,))
    db.execute("UPDATE journal SET started_at = ? + id * 10, finished_at = ? + id * 10 + 1.25, steps = '[]'",
               (now - 3000, now - 3000))
    db.commit()
    db.close()


def app_for(root: Path, tmp_path: Path, **kw: Any) -> Any:
    """The screen on the workspace at ``root``, as ``repro-tui`` makes it (no user keymap)."""
    from workbench.tui.app import make_app
    from workbench.workspace import Workspace

    return make_app(Workspace(root), keymap_file=tmp_path / "no-keymap.toml", **kw)


async def ready_diff(pilot: Any, name: str = "b1") -> Any:
    """The main screen once ``name`` is selected and its diff is on it."""
    screen = pilot.app.screen_stack[0]
    await wait_for(pilot, lambda: name in screen.envs, what=f"{name} listed")
    if screen.selected != name:
        screen.query_one("#envs").select_name(name)
    await wait_for(pilot, lambda: screen.report is not None and screen.report.right == name, what="the diff")
    return screen


async def shows(pilot: Any, *texts: str, timeout: float = 15.0) -> str:
    """Wait until the terminal shows every one of ``texts`` (painting follows events)."""
    return await wait_for(pilot, lambda: all(t in screen_text(pilot.app) for t in texts) and screen_text(pilot.app),
                          timeout, f"{texts!r} on the screen")


async def notified(pilot: Any, *parts: str, timeout: float = 15.0) -> str:
    """Wait for a notification that contains every one of ``parts``."""

    def found() -> str | None:
        return next((n for n in notifications(pilot.app) if all(p in n for p in parts)), None)

    return await wait_for(pilot, found, timeout, f"a notification with {parts!r}")


class SixteenColours(LineFilter):
    """What a 16-colour terminal (TERM=xterm) shows: every colour turned into the nearest of the
    16, by the same rule Rich applies when it writes to such a terminal. A snapshot taken
    through it shows what those users see (a dark grey border drawn black, say)."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [Segment(text, _sixteen(style), control) for text, style, control in segments]


@lru_cache(1024)
def _sixteen(style: Style | None) -> Style | None:
    if style is None:
        return None
    color = style.color.downgrade(ColorSystem.STANDARD) if style.color else None
    bgcolor = style.bgcolor.downgrade(ColorSystem.STANDARD) if style.bgcolor else None
    return style + Style(color=color, bgcolor=bgcolor)


def in_sixteen_colours(app: Any) -> Any:
    """The app, seen through a 16-colour terminal (its line filters, plus the downgrade)."""
    filters = app.get_line_filters
    app.get_line_filters = lambda: [*filters(), SixteenColours()]
    return app
