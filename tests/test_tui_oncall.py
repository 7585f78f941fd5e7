"""The screen as an on-call engineer lives it: a target that stays visible whatever pane has
the keyboard, dialogs that say why Enter did nothing, a change seen whole, a terminal too
small, prod's services behind a typed confirmation, a restart after a config edit, and
another engineer resetting and destroying the clone on screen.

Real workspaces, real services; Textual's Pilot at 80x24, and real ``repro-tui`` processes
in pseudo-terminals where a second user or the raw bytes of a terminal matter.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.terminal import screen as screen_of
from tests.tui_support import (
    app_for,
    change_rows_elsewhere,
    make_workspace,
    notifications,
    notified,
    ready_diff,
    screen_text,
    shows,
    wait_for,
)
from workbench.backends.local import kill_services
from workbench.tui.dialogs.confirm import TypedConfirmDialog
from workbench.tui.dialogs.detail import DetailDialog
from workbench.tui.dialogs.promote import PromoteDialog
from workbench.tui.main_screen import MainScreen
from workbench.tui.widgets.change_table import ChangeTable
from workbench.workspace import Workspace

SIZE = (80, 24)
LONG = "a-discount-mode-whose-name-goes-on-" * 6 + "end"


@pytest.fixture
def root(tmp_path: Path):
    path = make_workspace(tmp_path / "shop")
    ws = Workspace(path)
    ws.fork("prod", "b1")
    ws.fork("prod", "b2")
    change_rows_elsewhere(ws.stores["db"].location("b1"), "UPDATE orders SET status = 'refunded', total = 0 "
                                                          "WHERE id = 42")
    ws.close()
    yield path
    kill_services(path)


def title(app) -> str:
    return screen_text(app).splitlines()[0]


async def test_the_selected_environment_stays_the_visible_target_whatever_pane_has_the_keyboard(root, tmp_path):
    app = app_for(root, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready_diff(pilot)
        await shows(pilot, "▶ ● b1")
        assert title(app).lstrip().startswith("▶ b1 ·")
        await pilot.press("3")                               # a tab: the keyboard stays on the environments
        assert screen.query_one("#envs").has_focus
        await pilot.press("down")                            # so ↓ chooses the next environment, visibly
        await wait_for(pilot, lambda: screen.selected == "b2", what="b2 selected")
        await shows(pilot, "▶ ● b2")
        assert "▶ ● b1" not in screen_text(app) and title(app).lstrip().startswith("▶ b2 ·")
        await pilot.press("up", "enter")                     # enter: the keyboard into b1's diff
        await wait_for(pilot, lambda: screen.query_one("#data-changes", ChangeTable).has_focus, what="the rows")
        rows = screen.query_one("#data-changes", ChangeTable)
        await wait_for(pilot, lambda: rows.row_count == 2, what="b1's rows")
        await pilot.press("down")                            # now ↓ moves through the changes ...
        assert rows.cursor == 1 and screen.selected == "b1"  # ... and the target is still b1, marked
        await shows(pilot, "▶ ● b1")
        await pilot.press("d")                               # every dialog names its target
        assert isinstance(app.screen, TypedConfirmDialog) and app.screen.title_text == "Destroy b1"
        await pilot.press("escape")
        await pilot.press("escape")                          # esc: back to the environments
        assert screen.query_one("#envs").has_focus


async def test_dialogs_say_why_enter_did_nothing_and_placeholders_are_not_input(root, tmp_path):
    app = app_for(root, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready_diff(pilot)
        await pilot.press("d")
        await shows(pilot, "(type b1 here)")                 # in parentheses: never read as typed
        await pilot.press("enter")
        await shows(pilot, "✖ nothing typed: type b1 exactly to destroy; esc cancels")
        await pilot.press("b", "enter")
        await shows(pilot, "you typed 'b'")
        assert isinstance(app.screen, TypedConfirmDialog)
        await pilot.press("escape", "p")
        await wait_for(pilot, lambda: isinstance(app.screen, PromoteDialog), what="the promote dialog")
        await shows(pilot, "(one line: what the fix does)", "[ ] also merge")   # the checkbox says its state
        await pilot.press("enter")
        await shows(pilot, "nothing is committed without a message")
        app.screen.query_one("#merge").value = True
        await shows(pilot, "[x] also merge")
        await pilot.press("escape", "f")
        await shows(pilot, "(empty: bug1)")
        assert not screen.busy


async def test_enter_on_a_change_shows_it_whole_a_row_side_by_side(root, tmp_path):
    ws = Workspace(root)
    (ws.worktree("b1") / "config" / "app.yaml").write_text(f"feature:\n  rounding: {LONG}\ncurrency: EUR\n")
    app = app_for(root, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready_diff(pilot)
        await wait_for(pilot, lambda: screen.report.config, what="the config change")
        assert LONG not in screen_text(app)                   # the table cuts it to its column
        await pilot.press("enter", "enter")                   # into the diff, then the change
        assert isinstance(app.screen, DetailDialog)
        shown = re.sub(r"[\s│█▌▐]+", "", screen_text(app))    # wrapped over lines, but whole
        assert "config/app.yaml:feature.rounding" in shown and LONG.replace(" ", "") in shown
        assert "floor" in shown
        await pilot.press("escape", "3", "enter")             # the keyboard was in the diff: it stays there
        assert isinstance(app.screen, DetailDialog)
        text = screen_text(app)
        assert re.search(r"column\s+prod\s+b1", text), text   # the row's changed columns, side by side
        assert re.search(r"total\s+63\.0\s+0\.0", text) and re.search(r"status\s+paid\s+refunded", text), text
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_terminal_controls_in_data_and_logs_are_shown_escaped(root, tmp_path):
    """A value of the data and a service's output holding terminal controls (an OSC 52 that
    writes the clipboard, a title change, colours): the screen shows them as escapes or
    without the colours, and never sends them to the terminal."""
    ws = Workspace(root)
    hostile = "\x1b]52;c;ZWNobyBoaQ==\x1b\\\x1b[2J\x9b2J"
    change_rows_elsewhere(ws.stores["db"].location("b1"), f"UPDATE orders SET status = '{hostile}' WHERE id = 42")
    log = root / ".repro" / "run" / "b1" / "web.log"
    with log.open("a") as f:
        f.write("\x1b[31mERROR\x1b[0m payment refused \x1b]2;PWNED\x07for order 42\n")
    ws.close()
    app = app_for(root, tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await ready_diff(pilot)
        await wait_for(pilot, lambda: screen.report.data, what="the data change")
        await pilot.press("3")
        await wait_for(pilot, lambda: "\\x1b]52" in screen_text(app), what="the value, escaped")
        assert not any(ch in screen_text(app) for ch in "\x1b\x07\x9b")
        await pilot.press("enter", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailDialog), what="the change whole")
        assert "\\x1b]52" in screen_text(app) and not any(ch in screen_text(app) for ch in "\x1b\x07\x9b")
        await pilot.press("escape", "l")
        await wait_for(pilot, lambda: "payment refused" in screen_text(app), what="the log line")
        text = screen_text(app)
        assert "ERROR payment refused for order 42" in text, text
        assert not any(ch in text for ch in "\x1b\x07\x9b") and "PWNED" not in text


async def test_a_terminal_too_small_says_so_instead_of_cutting_the_screen(root, tmp_path):
    app = app_for(root, tmp_path)
    async with app.run_test(size=(60, 20)) as pilot:
        await shows(pilot, "The terminal is 60×20: repro-tui needs at least 74×20")
        assert "Environments" not in screen_text(app)
        await pilot.resize_terminal(80, 24)
        await shows(pilot, "Environments")
        assert "needs at least" not in screen_text(app)
        await pilot.press("q")


async def test_a_config_edit_says_restart_needed_and_the_restart_key_restarts(root, tmp_path):
    ws = Workspace(root)
    app = app_for(root, tmp_path, poll_interval=0.5)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready_diff(pilot)
        assert "restart needed" not in title(app)
        before = ws.status("b1").services["web"]["pid"]
        (ws.worktree("b1") / "config" / "app.yaml").write_text("feature:\n  rounding: round\ncurrency: EUR\n")
        await wait_for(pilot, lambda: "⚠ restart needed (X)" in title(app), what="the restart notice")
        await pilot.press("X")
        await notified(pilot, "b1 restarted", timeout=30)
        await wait_for(pilot, lambda: "restart needed" not in title(app) and not screen.busy, what="no notice")
    assert ws.status("b1").services["web"]["pid"] != before and ws.journal("b1")[0].op == "restart"


async def test_prod_services_start_and_stop_only_after_typing_prod(root, tmp_path):
    ws = Workspace(root)
    app = app_for(root, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready_diff(pilot)
        screen.query_one("#envs").select_name("prod")
        await wait_for(pilot, lambda: screen.selected == "prod", what="prod selected")
        await shows(pilot, "x Start/stop prod…")              # the footer says it asks
        await pilot.press("x")
        dialog = app.screen
        assert isinstance(dialog, TypedConfirmDialog) and dialog.title_text == "Start prod's services"
        await pilot.press(*"b1", "enter")
        await shows(pilot, "you typed 'b1': type prod exactly to start")
        assert ws.status("prod").state == "stopped"
        await pilot.press("escape")                             # cancelled: nothing ran
        assert ws.status("prod").state == "stopped" and not screen.busy
        await pilot.press("x", *"prod", "enter")
        await notified(pilot, "prod started", timeout=30)
    assert ws.status("prod").state == "running"


async def test_two_screens_another_users_reset_and_destroy_are_notices(root, tmp_path):
    """Alice looks at b1 on her screen; Bob, on his, resets it and then destroys it."""
    ws = Workspace(root)
    alice = app_for(root, tmp_path, poll_interval=0.5)
    bob = screen_of(root, USER="bob", LOGNAME="bob")
    try:
        async with alice.run_test(size=SIZE) as pilot:
            screen = await ready_diff(pilot)
            await pilot.press("r")                                   # Alice resets b1 herself ...
            await notified(pilot, "b1 reset to forked", timeout=30)
            change_rows_elsewhere(ws.stores["db"].location("b1"), "UPDATE orders SET status = 'bob' WHERE id = 7")
            bob.wait_for("repro/b1")
            bob.select_next("b1")
            bob.type("r")                                            # ... then Bob resets it too
            await notified(pilot, "bob@", "reset b1 to forked", timeout=30)
            await wait_for(pilot, lambda: (screen.envs["b1"].last_reset_by or "").startswith("bob@"),
                           what="bob's reset read")
            await pilot.press("z")                                   # Alice's undo would take Bob's back
            await notified(pilot, "bob@", "was the last to reset b1")
            await pilot.pause(1.0)
            assert not screen.busy and [j.op for j in ws.journal("b1")][:1] != ["undo-reset"]
            bob.type("d")
            bob.wait_for("Destroy b1")
            bob.type("b1\r")                                         # Bob destroys the clone Alice looks at
            await notified(pilot, "bob@", "destroyed b1", timeout=30)
            await wait_for(pilot, lambda: screen.selected == "prod", what="prod selected")
            await pilot.pause(3.5)                                   # a diff error would be told by now
            assert not [n for n in notifications(alice) if "diff failed" in n], notifications(alice)
            assert "Traceback" not in screen_text(alice)
    finally:
        bob.close()


async def test_a_notification_never_covers_a_dialogs_text(root, tmp_path):
    ws = Workspace(root)
    app = app_for(root, tmp_path, poll_interval=0.5)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready_diff(pilot)
        await pilot.press("question_mark")
        before = screen_text(app)
        from tests.conftest import run_cli

        assert run_cli("reset", "b1", cwd=root, env={"USER": "bob", "LOGNAME": "bob"}).returncode == 0
        await notified(pilot, "bob@", "reset b1", timeout=20)          # told while the help is open ...
        await shows(pilot, "ℹ b1: changed by someone else: bob@")      # ... on the dialog's own line
        after = screen_text(app).splitlines()
        for line in before.splitlines()[1:-2]:                        # the help's text, untouched
            if "Keys" in line or "Fork prod" in line or "Reset the clone" in line:
                assert line in after, line
        assert not screen.query("Toast") or not app.screen.query("Toast")
    assert ws.journal("b1")[0].user == "bob"


async def test_a_notification_shown_before_a_dialog_opens_does_not_cover_it(root, tmp_path):
    """An operation's "done" stays on screen for seconds; a dialog opened meanwhile (a destroy
    right after a reset) showed it over its own text, in the middle of the line to read."""
    app = app_for(root, tmp_path, poll_interval=0.5)
    async with app.run_test(size=SIZE, notifications=True) as pilot:   # toasts drawn, as in a terminal
        await ready_diff(pilot)
        app.notify("b1 reset to forked in 226 ms; its services restarted. Press z to undo.",
                   title="reset b1: done", timeout=8)
        await pilot.pause(0.3)
        assert "reset b1: done" in screen_text(app)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, TypedConfirmDialog))
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "also lose uncommitted changes in its worktree (--force)" in text, text
        assert "reset b1: done" not in text and "Press z to undo" not in text, text
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert "Activity" in screen_text(app)   # the main screen again; its journal keeps what was done


def test_esc_and_a_key_in_one_write_are_esc_then_the_key(root, tmp_path):
    """Over a slow SSH link ESC and the next key arrive in one packet: never read as Alt+key."""
    term = screen_of(root)
    try:
        term.wait_for("repro/b2")
        mark = term.mark()
        term.type("?")
        term.wait_for("Keys  (esc closes)", since=mark)
        mark = term.mark()
        term.type("\x1bf")                                  # close the help, open the fork dialog
        term.wait_for("Fork a new clone", since=mark)
        mark = term.mark()
        term.type("\x1b\x1b[B")                             # close it; an arrow (a sequence) still reads as one
        term.wait_for("prod ↔ b1", since=mark)
        mark = term.mark()
        term.type("?")
        term.wait_for("Keys  (esc closes)", since=mark)
        mark = term.mark()
        term.type("\x1br")                                  # close the help, reset b1
        term.wait_for("b1 reset to forked", since=mark)
        term.type("q")
        assert term.proc.wait(timeout=15) == 0
    finally:
        term.close()
    ws = Workspace(root)
    assert [j.op for j in ws.journal("b1")][:1] == ["reset"] or \
        [j.op for j in ws.journal("b1") if j.op != "prepare-ready"][:1] == ["reset"]


@pytest.mark.parametrize("dialog", [None, "l"], ids=["live-diff", "logs-dialog"])
def test_an_idle_screen_writes_little_to_its_terminal(root, tmp_path, dialog):
    """Over SSH every repaint is bytes on the link: idle, with a clone's live diff on screen (or
    its logs open), the screen writes under 200 bytes a second (before: 610 and 6,118).
    ``bench/bench_idle.py`` measures the same over a longer time."""
    term = screen_of(root)
    try:
        term.wait_for("repro/b2")
        term.select_next("b1")
        if dialog:
            mark = term.mark()
            term.type(dialog)
            term.wait_for("refreshed every second", since=mark)
        time.sleep(2.0)                                     # settled: the first diff, the first log read
        seconds = 4.0
        rate = term.bytes_during(seconds) / seconds
        assert rate < 200, f"{rate:.0f} B/s while idle"
    finally:
        term.close()
