"""The demo's story, driven through the screen at 80x24: the workspace ``repro-tui demo`` builds.

Fork from the keyboard, reproduce the failing order in the clone, change its data through
its own API, see each change on screen within 2 s without a key press, reset, undo,
compare with a snapshot, stop and start, promote the fix.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.tui_support import git, notified, shows, wait_for
from workbench.backends.local import kill_services
from workbench.demo import DEMO_BUG, build_demo
from workbench.tui.app import make_app
from workbench.tui.main_screen import MainScreen
from workbench.tui.widgets.change_table import ChangeTable
from workbench.workspace import Workspace


@pytest.fixture
def demo(tmp_path: Path):
    root = build_demo(tmp_path / "shop", orders=3000)
    yield root
    kill_services(root)


def http(method: str, url: str) -> int:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def rows(screen: MainScreen, section: str) -> list[tuple[str, ...]]:
    table = screen.query_one(f"#{section}-changes", ChangeTable)
    return [table.row_cells(i) for i in range(table.row_count)]


async def within(pilot, seconds: float, check, what: str) -> None:
    """The screen shows it by itself (no key pressed) within ``seconds``."""
    t0 = time.monotonic()
    await wait_for(pilot, check, timeout=seconds + 3, what=what)
    assert time.monotonic() - t0 <= seconds, f"{what} took {time.monotonic() - t0:.1f} s"


async def test_the_demo_story_through_the_screen(demo, tmp_path):
    ws = Workspace(demo)
    app = make_app(ws, keymap_file=tmp_path / "none.toml")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen_stack[0]
        assert isinstance(screen, MainScreen)
        await wait_for(pilot, lambda: "prod" in screen.envs, what="prod listed")
        await pilot.press("f", *"bug1", "enter")
        await wait_for(pilot, lambda: "bug1" in screen.envs and not screen.busy, 60, "bug1 forked")
        await wait_for(pilot, lambda: screen.report is not None and screen.report.right == "bug1", what="the diff")
        await shows(pilot, "prod ↔ bug1 · ✓ clean")
        await shows(pilot, "Config 0", "Data 0")                           # a fresh clone diffs clean
        port = screen.envs["bug1"].services["web"]["port"]
        assert http("GET", f"http://127.0.0.1:{port}/orders/{DEMO_BUG['order_id']}") == DEMO_BUG["status"]

        # the clone's app changes its data: shown by itself within 2 s
        await pilot.press("3")
        assert http("POST", f"http://127.0.0.1:{port}/orders/{DEMO_BUG['refund_order_id']}/refund") == 200
        order = str(DEMO_BUG["refund_order_id"])
        await within(pilot, 2.0, lambda: any(r[1] == order and r[2] == "status" for r in rows(screen, "data")),
                     "the refunded order")
        await shows(pilot, "paid → refunded")

        # the fix, edited in the clone's worktree: shown by itself within 2 s
        config = ws.worktree("bug1") / DEMO_BUG["config_file"]
        config.write_text(config.read_text().replace("discount_mode: stacked", "discount_mode: sequential"))
        await pilot.press("1")
        await within(pilot, 2.0, lambda: any("discount_mode" in r[1] for r in rows(screen, "config")),
                     "the config change")
        await shows(pilot, "stacked → sequential")

        # compare with a snapshot: only what changed since
        await pilot.press("s", "enter")
        await wait_for(pilot, lambda: not screen.busy and len(screen.envs["bug1"].snapshots) == 2, 30, "s1")
        await pilot.press("c", "down", "enter")                            # prod, then newest first: bug1@s1
        await wait_for(pilot, lambda: screen.report is not None and screen.report.left == "bug1@s1",
                       what="the diff against s1")
        await pilot.press("3")
        await wait_for(pilot, lambda: rows(screen, "data") == [], what="no data change since s1")
        await shows(pilot, "bug1@s1 ↔ bug1")

        # reset to the latest snapshot (s1) and undo it; the refund is in s1, so reset to forked
        await pilot.press("R", "down", "enter")
        await wait_for(pilot, lambda: not screen.busy and screen.envs["bug1"].last_reset == "forked", 60, "reset")
        await notified(pilot, "Press z to undo")
        await pilot.press("z")
        await wait_for(pilot, lambda: not screen.busy, 60, "undo")
        await notified(pilot, "back as it was before the reset")

        # stop and start from the keyboard
        await pilot.press("x")
        await wait_for(pilot, lambda: not screen.busy and screen.envs["bug1"].state == "stopped", 30, "stopped")
        await shows(pilot, "○ bug1")
        await pilot.press("x")
        await wait_for(pilot, lambda: not screen.busy and screen.envs["bug1"].state == "running", 60, "running")

        # promote the fix
        await pilot.press("p")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "PromoteDialog", what="the promote dialog")
        await shows(pilot, "+  discount_mode: sequential")
        await pilot.press(*"Count discount codes after markdowns", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen) and not screen.busy, 60, "promote")
    assert git(demo, "log", "-1", "--format=%s", "repro/bug1") == "Count discount codes after markdowns"
    assert "discount_mode: sequential" in git(demo, "show", "repro/bug1:config/app.yaml")
    assert "discount_mode: stacked" in git(demo, "show", "main:config/app.yaml")   # prod untouched


async def test_first_page_of_a_huge_table_paints_at_once(monkeypatch):
    """The row table formats only the rows on screen (and the first 200, to size its columns):
    200,000 rows paint like 20. Counted, not timed (BENCHMARKS.md has the times)."""
    from textual.app import App, ComposeResult
    from textual.geometry import Region

    from workbench.diff.model import Change
    from workbench.tui.widgets import change_table

    formatted = []
    real = change_table.change_cells
    monkeypatch.setattr(change_table, "change_cells", lambda c, section: formatted.append(c) or real(c, section))

    changes = [Change("data", f"db.t[{i}].v", "changed", i, i + 1, store="db", table="t", key=[i], column="v")
               for i in range(200_000)]

    class One(App):
        def compose(self) -> ComposeResult:
            yield ChangeTable("data")

    app = One()
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(ChangeTable)
        await pilot.pause()
        table.set_changes(changes)
        strips = table.render_lines(Region(0, 0, table.size.width, table.size.height))
        assert "0" in strips[1].text and "1 → 2" in strips[2].text
        assert 0 < len(formatted) <= 200 + table.size.height, len(formatted)
        table.action_edge(1)
        await pilot.pause()
        assert table.current_change() is changes[-1]
