"""The logs of one service, refreshed every second while the dialog is open."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Log, Select, Static
from textual.worker import get_current_worker

from workbench.errors import ReproError
from workbench.tui.dialogs.base import Dialog

ReadLogs = Callable[[str], list[str]]
"""Reads the last lines of a service's log (called in a thread)."""


def appended(before: list[str], now: list[str]) -> list[str] | None:
    """The lines added to a log between two reads of its last lines (the window slides as
    lines come): what follows the longest end of ``before`` that ``now`` starts with; None
    when the two share nothing (the log was rotated or replaced)."""
    if not before:
        return now
    for k in range(min(len(before), len(now)), 0, -1):
        if now[k - 1] == before[-1] and now[:k] == before[-k:]:
            return now[k:]
    return None


@dataclass
class LogsRead(Message):
    lines: list[str]
    error: str | None = None


class LogsDialog(Dialog[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close", id="dialog-cancel")]

    def __init__(self, env: str, services: list[str], read: ReadLogs, interval: float = 1.0) -> None:
        super().__init__()
        self.env = env
        self.services = services
        self.read = read
        self.interval = interval
        self.service = services[0]
        self._lines: list[str] = []
        self._status = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide") as box:
            box.border_title = f"Logs of {self.env}  (esc closes)"
            if len(self.services) > 1:
                yield Select([(s, s) for s in self.services], value=self.service, allow_blank=False, id="service",
                             compact=True)
            yield Static("", id="log-status", classes="prompt")
            yield Log(id="log", max_lines=2000)

    def on_mount(self) -> None:
        self.query_one(Log).focus()
        self.follow(self.service)

    @on(Select.Changed, "#service")
    def _service(self, event: Select.Changed) -> None:
        self.service = str(event.value)
        self._lines = []
        self.query_one(Log).clear()
        self.follow(self.service)

    @work(thread=True, exclusive=True, exit_on_error=False, group="logs")
    def follow(self, service: str) -> None:
        """Poll the log (a cancellable loop: it checks ``is_cancelled`` between reads)."""
        worker = get_current_worker()
        while not worker.is_cancelled:
            try:
                self.post_message(LogsRead(self.read(service)))
            except ReproError as exc:
                self.post_message(LogsRead([], error=str(exc)))
                return
            except Exception as exc:  # never a traceback on the screen
                self.post_message(LogsRead([], error=f"{type(exc).__name__}: {exc}"))
                return
            deadline = time.monotonic() + self.interval
            while time.monotonic() < deadline and not worker.is_cancelled:
                time.sleep(0.05)

    def on_logs_read(self, message: LogsRead) -> None:
        """Only what changed is drawn: an idle log costs the terminal nothing (over SSH every
        repaint is bytes on the link)."""
        text = message.error or f"{self.service}: last {len(message.lines)} lines, refreshed every second"
        if text != self._status:
            self._status = text
            self.query_one("#log-status", Static).update(text)
        if message.error or message.lines == self._lines:
            return
        log = self.query_one(Log)
        new = appended(self._lines, message.lines)
        if new is None:
            log.clear()
            new = message.lines
        if new:
            log.write_lines(new)
        self._lines = message.lines

    def action_close(self) -> None:
        self.workers.cancel_group(self, "logs")
        self.dismiss(None)
