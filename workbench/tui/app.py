"""The Textual application: one screen over one workspace.

``make_app(ws)`` is the one way to build it — the CLI, the tests, the screenshot script
and the benchmark all use it — and ``run_app(ws)`` runs it in the terminal.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from textual.app import App
from textual.driver import Driver
from textual.notifications import SeverityLevel
from textual.screen import Screen

from workbench.owners import me
from workbench.tui.dialogs.base import Dialog
from workbench.tui.gateway import Engine, Gateway, Post
from workbench.tui.keymap import keymap_path, load_keymap
from workbench.tui.main_screen import MainScreen
from workbench.tui.settings import Clock, ScreenSettings


def styles_dir() -> Path:
    """The stylesheets: inside the package in a wheel (``workbench/styles``), else the
    repository's top-level ``styles/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "styles", here.parent.parent / "styles"):
        if (candidate / "app.tcss").is_file():
            return candidate
    raise FileNotFoundError("the stylesheets (styles/app.tcss) are missing from this installation")


class WorkbenchApp(App[int]):
    """The workbench. It owns the workspace that operations use; readers open their own."""

    CSS_PATH = str(styles_dir() / "app.tcss")
    TITLE = "repro-tui"
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, ws: Engine, clock: Clock | None = None, *, mask: bool = False,
                 keymap: dict[str, str] | None = None, keymap_file: Path | None = None,
                 keymap_problems: list[str] | None = None, poll_interval: float = 2.0,
                 diff_limit: int = 100_000) -> None:
        super().__init__()
        self.ws = ws
        self.settings = ScreenSettings(
            clock=clock or time.time, mask=mask, keymap=keymap or {}, keymap_file=keymap_file,
            workspace_name=ws.spec.name, prod_branch=ws.spec.prod_branch, backend_name=ws.spec.backend,
            has_services=bool(ws.spec.services), checks=tuple(ws.spec.checks.values()), root=ws.root,
            cwd=Path.cwd(), user=me())
        self.keymap_problems = keymap_problems or []
        self.poll_interval = poll_interval
        self.diff_limit = diff_limit
        if self.settings.keymap:
            self.set_keymap(self.settings.keymap)

    def get_driver_class(self) -> type[Driver]:
        """Textual's terminal driver, but ESC followed by a key in one read is ESC, then the key
        (``workbench.tui.driver``); another driver (``serve``'s) is left as it is."""
        driver = super().get_driver_class()
        if driver.__module__ == "textual.drivers.linux_driver" and driver.__name__ == "LinuxDriver":
            from workbench.tui.driver import EscapeThenKeyDriver

            return EscapeThenKeyDriver
        return driver

    def gateway(self, post: Post) -> Gateway:
        """The screen's way to the engine: its threads post to ``post``."""
        return Gateway(self.ws, post, poll_interval=self.poll_interval, diff_limit=self.diff_limit)

    def get_default_screen(self) -> Screen:
        return MainScreen(self.settings, self.gateway)

    async def on_load(self) -> None:
        # Thread workers run in the loop's default executor; the poller, the live diff and a
        # logs view run for long, so give operations room beside them.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=16,
                                                                           thread_name_prefix="repro-tui"))

    def on_mount(self) -> None:
        for problem in self.keymap_problems:
            self.notify(problem, title="keymap", severity="warning", timeout=10)

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """A notification. Its text is never read as markup (an engine message may hold ``[1]``);
        over a dialog it goes on the dialog's own line instead of a toast that would hide the
        dialog's text."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)
        screen = self.screen if self.screen_stack else None
        if isinstance(screen, Dialog):
            screen.show_notice(message, title, severity, timeout or self.NOTIFICATION_TIMEOUT)

    async def action_quit(self) -> None:  # ctrl+q and friends end the gateway's threads too
        if isinstance(self.screen, MainScreen):
            self.screen.stop_workers()
        self.exit(0)


def make_app(ws: Engine, clock: Clock | None = None, *, mask: bool = False, keymap_file: Path | None = None,
             poll_interval: float = 2.0, diff_limit: int = 100_000) -> WorkbenchApp:
    """The app for ``ws``. ``clock`` gives "now" for ages (tests pass a fixed one); ``mask``
    hides ports, which change from run to run (snapshot tests); the keymap is read from
    ``keymap_file`` (default: the user's config directory). ``poll_interval`` is how often
    the environments and the journal are read again (operations of this screen refresh
    them at once; the diff is live on its own). ``diff_limit`` caps the changes
    kept per table (the rest are counted, shown as "+N more"), which bounds memory."""
    path = keymap_file or keymap_path()
    keymap, problems = load_keymap(path)
    return WorkbenchApp(ws, clock, mask=mask, keymap=keymap, keymap_file=path, keymap_problems=problems,
                        poll_interval=poll_interval, diff_limit=diff_limit)


def run_app(ws: Engine) -> int:
    """Run the screen in this terminal; returns the process exit code."""
    app = make_app(ws)
    result = app.run()
    return int(result or 0) if app.return_code is None else app.return_code
