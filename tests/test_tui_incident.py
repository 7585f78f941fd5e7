"""The incident on the screen, at 80x24 with real processes: the Checks pane says beside prod
whether the selected clone reproduces, k runs the checks again, K shows both answers and how
they differ, prod's row and D show its drift (f there forks a clone that carries it), and W
writes the post-mortem and shows it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tui_support import make_workspace, notified, screen_text, shows, wait_for
from workbench.backends.local import kill_services
from workbench.tui.app import make_app
from workbench.tui.availability import Situation, refusal
from workbench.tui.dialogs.fork import ForkDialog
from workbench.tui.dialogs.reading import ReadingDialog
from workbench.tui.main_screen import MainScreen
from workbench.workspace import Workspace

# prod's service is python -m http.server in its folder: GET /config/app.yaml answers the file
CHECK = """\
checks:
  rounding:
    http: GET /config/app.yaml
    expect: {text: "rounding: round"}
"""


@pytest.fixture
def root(tmp_path: Path):
    path = make_workspace(tmp_path / "shop")
    with (path / "repro.yaml").open("a") as f:
        f.write(CHECK)
    from tests.conftest import git

    git(path, "commit", "-qam", "a check")
    yield path
    kill_services(path)


async def test_checks_drift_and_the_post_mortem_from_the_keyboard(root, tmp_path):
    ws = Workspace(root)
    ws.start("prod")
    ws.fork("prod", "b1")                                    # the checks ran after the fork
    (root / "config" / "app.yaml").write_text("feature:\n  rounding: floor\n  cap: 70\ncurrency: EUR\n")  # by hand
    app = make_app(ws, keymap_file=tmp_path / "none.toml")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen_stack[0]
        assert isinstance(screen, MainScreen)
        await wait_for(pilot, lambda: "b1" in screen.envs, what="b1 listed")
        await shows(pilot, "⚠ drift 1")                       # on prod's row
        screen.query_one("#envs").select_name("b1")
        await shows(pilot, "✖ rounding  reproduces", "200 (text differs) on prod an…")   # K shows it whole

        (ws.worktree("b1") / "config" / "app.yaml").write_text("feature:\n  rounding: round\ncurrency: EUR\n")
        await pilot.press("k")
        await wait_for(pilot, lambda: not screen.busy, 30, "the checks")
        await notified(pilot, "every check passes on b1")
        await shows(pilot, "✓ rounding  fixed in b1", "200; prod still 200 (text dif…")

        await pilot.press("K")
        assert isinstance(app.screen, ReadingDialog)
        await shows(pilot, "Checks of b1 beside prod", "fixed in b1: 200; prod still 200 (text differs)",
                    "-  rounding: floor", "+  rounding: round")
        await pilot.press("escape")

        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ReadingDialog), what="the drift view")
        await shows(pilot, "Prod's drift", "+ config/app.yaml:feature.cap  70", "f forks prod")
        await pilot.press("f")
        assert isinstance(app.screen, ForkDialog)
        await pilot.press(*"hot", "enter")
        await wait_for(pilot, lambda: "hot" in screen.envs and not screen.busy, 60, "hot forked")
        assert "cap: 70" in (ws.worktree("hot") / "config" / "app.yaml").read_text()

        screen.query_one("#envs").select_name("b1")
        await wait_for(pilot, lambda: screen.selected == "b1")
        await pilot.press("W")
        await wait_for(pilot, lambda: isinstance(app.screen, ReadingDialog), what="the post-mortem")
        report = root / ".repro" / "reports" / "postmortem-b1.md"
        await shows(pilot, "Post-mortem: shop — b1", "Written to .repro/reports/postmortem-b1.md")
        assert "## Timeline" in report.read_text() and "| check b1 |" in report.read_text()
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen) and "Checks" in screen_text(app)
    ws.close()


def test_the_check_keys_say_why_when_there_is_no_check():
    situation = Situation(selected="b1", kind="clone", state="running", has_checks=False)
    assert "declares no check" in (refusal("check", situation) or "")
    assert "declares no check" in (refusal("check_details", situation) or "")
    busy = Situation(selected="b1", kind="clone", state="running", busy="fork b2", has_checks=True)
    assert "one operation at a time" in (refusal("check", busy) or "")
    assert refusal("check_details", busy) is None and refusal("drift", busy) is None
