"""How the screen looks, as SVG snapshots (pytest-textual-snapshot), at 80x24.

The workspace is real and its variable parts are made stable: recorded times are
rewritten to fixed ones, the screen's clock is fixed, and ports (chosen free at each run)
are masked. Update after a deliberate change of look with ``pytest --snapshot-update``.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.tui_support import FIXED_NOW, freeze_times, in_sixteen_colours, make_workspace
from workbench.backends.local import kill_services
from workbench.tui.app import make_app
from workbench.tui.main_screen import MainScreen
from workbench.workspace import Workspace


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    """prod, a clone b1 with real changes in config, services and data, and a stopped clone b2."""
    root = make_workspace(tmp_path_factory.mktemp("snap") / "shop")
    ws = Workspace(root)
    try:
        ws.fork("prod", "b1")
        ws.snapshot("b1", "s1")
        db = sqlite3.connect(ws.stores["db"].location("b1"))
        db.execute("UPDATE orders SET status = 'refunded' WHERE id = 42")
        db.execute("UPDATE orders SET total = 0.01 WHERE id = 43")
        db.execute("DELETE FROM orders WHERE id = 7")
        db.execute("INSERT INTO orders VALUES (999, 3, 12.5, 'new')")
        db.commit()
        db.close()
        tree = ws.worktree("b1")
        (tree / "config" / "app.yaml").write_text("feature:\n  rounding: round\n  cap: 70\ncurrency: EUR\n")
        spec = (tree / "repro.yaml").read_text()
        (tree / "repro.yaml").write_text(spec.replace("MODE: live", "MODE: debug"))
        ws.fork("prod", "b2")
        ws.stop("b2")
    finally:
        ws.close()
    freeze_times(root)
    yield root
    kill_services(root)


def app_on(root: Path, tmp_path: Path):
    return make_app(Workspace(root), clock=lambda: FIXED_NOW, mask=True, keymap_file=tmp_path / "none.toml")


def select(name: str, rows: int = 4):
    """Select ``name`` and wait until its diff is on the screen (the watch posts it)."""

    async def run_before(pilot) -> None:
        screen = pilot.app.screen_stack[0]
        assert isinstance(screen, MainScreen)
        deadline = time.monotonic() + 20
        while name not in screen.envs and time.monotonic() < deadline:
            await pilot.pause(0.05)
        screen.query_one("#envs").select_name(name)
        while time.monotonic() < deadline:
            report = screen.report
            if report is not None and report.right == name and len(report.data) >= rows and report.config:
                break
            await pilot.pause(0.05)
        await pilot.pause(0.3)

    return run_before


def test_main_screen_config_tab(snap_compare, scene, tmp_path):
    assert snap_compare(app_on(scene, tmp_path), run_before=select("b1"), terminal_size=(80, 24))


def test_main_screen_services_tab(snap_compare, scene, tmp_path):
    assert snap_compare(app_on(scene, tmp_path), press=["2"], run_before=select("b1"), terminal_size=(80, 24))


def test_main_screen_data_tab(snap_compare, scene, tmp_path):
    assert snap_compare(app_on(scene, tmp_path), press=["3"], run_before=select("b1"), terminal_size=(80, 24))


def test_prod_selected_offers_only_what_applies(snap_compare, scene, tmp_path):
    async def run_before(pilot) -> None:
        screen = pilot.app.screen_stack[0]
        while "b2" not in screen.envs:
            await pilot.pause(0.05)
        await pilot.pause(0.3)

    assert snap_compare(app_on(scene, tmp_path), run_before=run_before, terminal_size=(80, 24))


def test_fork_dialog(snap_compare, scene, tmp_path):
    assert snap_compare(app_on(scene, tmp_path), press=["f", "B"], run_before=select("b1"), terminal_size=(80, 24))


def test_promote_dialog(snap_compare, scene, tmp_path):
    async def run_before(pilot) -> None:
        await select("b1")(pilot)
        await pilot.press("p")
        while not pilot.app.screen.__class__.__name__ == "PromoteDialog":
            await pilot.pause(0.05)

    assert snap_compare(app_on(scene, tmp_path), press=[*"Round discounts"], run_before=run_before,
                        terminal_size=(80, 24))


def test_help(snap_compare, scene, tmp_path):
    assert snap_compare(app_on(scene, tmp_path), press=["question_mark"], run_before=select("b1"),
                        terminal_size=(80, 24))


def test_wide_terminal(snap_compare, scene, tmp_path):
    assert snap_compare(app_on(scene, tmp_path), press=["3"], run_before=select("b1"), terminal_size=(120, 34))


def test_sixteen_colours(snap_compare, scene, tmp_path):
    """A 16-colour terminal: every pane keeps a visible border, the target reads by its mark."""
    assert snap_compare(in_sixteen_colours(app_on(scene, tmp_path)), press=["3"], run_before=select("b1"),
                        terminal_size=(80, 24))


def test_no_color(snap_compare, scene, tmp_path, monkeypatch):
    """NO_COLOR: greys only; states, changes, the target and checkboxes read as words and marks."""
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(app_on(scene, tmp_path), press=["3"], run_before=select("b1"), terminal_size=(80, 24))


def test_too_small(snap_compare, scene, tmp_path):
    assert snap_compare(app_on(scene, tmp_path), run_before=select("b1"), terminal_size=(60, 20))


def test_detail_of_a_row(snap_compare, scene, tmp_path):
    assert snap_compare(app_on(scene, tmp_path), press=["3", "enter", "enter"], run_before=select("b1"),
                        terminal_size=(80, 24))


def test_destroy_dialog_says_why_enter_did_nothing(snap_compare, scene, tmp_path):
    assert snap_compare(app_on(scene, tmp_path), press=["d", "b", "enter"], run_before=select("b1"),
                        terminal_size=(80, 24))
