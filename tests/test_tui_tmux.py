"""End to end: the installed ``repro-tui`` in a real terminal (tmux, 80x24), keys sent as a user types.

Open the screen, fork a clone from the keyboard, see a row changed by another process,
reset it, quit. Run in a 16-colour terminal (TERM=xterm) and checked for it; a second
run with NO_COLOR=1 checks that only greys are drawn and that states still read as words.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tui_support import change_rows_elsewhere, make_workspace
from workbench.backends.local import kill_services
from workbench.workspace import Workspace

REPRO_TUI = Path(sys.executable).parent / "repro-tui"

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"),
    pytest.mark.skipif(not REPRO_TUI.exists(), reason="repro-tui is not installed in this environment"),
]

COLOUR = re.compile(r"\x1b\[([0-9;]*)m")


class Terminal:
    """One tmux server of our own (its own socket), one 80x24 window running a command."""

    def __init__(self, tmp: Path, command: str, env: dict[str, str]) -> None:
        self.socket = str(tmp / "tmux.sock")
        self.run("new-session", "-d", "-x", "80", "-y", "24", command, env=env)

    def run(self, *args: str, env: dict[str, str] | None = None) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], check=True, capture_output=True, text=True,
                              env=env).stdout

    def screen(self, escapes: bool = False) -> str:
        return self.run("capture-pane", "-p", *(["-e"] if escapes else []))

    def keys(self, *keys: str) -> None:
        self.run("send-keys", *keys)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen shows:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def root(tmp_path: Path):
    path = make_workspace(tmp_path / "shop")
    yield path
    kill_services(path)


def _terminal(tmp_path: Path, root: Path, **env: str) -> Terminal:
    """tmux gives its panes its own TERM: the variables are set in the pane's command."""
    full = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLORTERM", "TEXTUAL_COLOR_SYSTEM")}
    settings = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    command = f"cd {shlex.quote(str(root))} && env -u COLORTERM {settings} {REPRO_TUI}; echo EXIT=$?; sleep 60"
    return Terminal(tmp_path, command, full)


def test_open_fork_change_reset_quit_in_a_16_colour_terminal(root, tmp_path):
    term = _terminal(tmp_path, root, TERM="xterm")
    try:
        term.wait_for("Environments")
        term.wait_for("no clone yet")
        term.keys("f")
        term.wait_for("Fork a new clone")
        term.keys("b1", "Enter")
        shown = term.wait_for("repro/b1")
        term.wait_for("prod ↔ b1")
        assert "running" in term.wait_for("1 snap")
        change_rows_elsewhere(Workspace(root).stores["db"].location("b1"),
                              "UPDATE orders SET status = 'refunded' WHERE id = 42")
        term.keys("3")
        term.wait_for("paid → refunded")
        assert "Data 1" in term.screen()
        term.keys("r")
        shown = term.wait_for("to undo")
        term.wait_for("Data 0")
        assert "refunded" not in term.screen().split("Activity")[0]
        # 16 colours: no 256-colour or true-colour escape was drawn
        codes = {c for c in COLOUR.findall(term.screen(escapes=True))}
        assert not [c for c in codes if c.startswith(("38;5", "48;5", "38;2", "48;2"))], codes
        term.keys("q")
        shown = term.wait_for("EXIT=")
        assert "EXIT=0" in shown and "Traceback" not in shown
    finally:
        term.close()


def test_no_color_draws_only_greys_and_states_read_as_words(root, tmp_path):
    Workspace(root).fork("prod", "b1")
    term = _terminal(tmp_path, root, TERM="xterm-256color", NO_COLOR="1")
    try:
        shown = term.wait_for("repro/b1")
        assert re.search(r"● b1\s+running", shown) and re.search(r"○ prod\s+stopped", shown)
        for code in COLOUR.findall(term.screen(escapes=True)):
            parts = code.split(";")
            if parts[:2] in (["38", "5"], ["48", "5"]):
                assert int(parts[2]) in (0, 15, 16, 231) or 232 <= int(parts[2]) <= 255, code   # greys only
            assert parts[:2] not in (["38", "2"], ["48", "2"]), code
        term.keys("q")
        assert "EXIT=0" in term.wait_for("EXIT=")
    finally:
        term.close()
