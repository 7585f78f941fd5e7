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
from textual.screen import ModalScreen
from textual.widgets import Log, Select, Static
from textual.worker import get_current_worker

from workbench.errors import ReproError

ReadLogs = Callable[[str], list[str]]
"""Reads the last lines of a service's log (called in a thread)."""


@dataclass
class LogsRead(Message):
    lines: list[str]
    error: str | None = None


class LogsDialog(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close", id="dialog-cancel")]

    def __init__(self, env: str, services: list[str], read: ReadLogs, interval: float = 1.0) -> None:
        super().__init__(classes="dialog")
        self.env = env
        self.services = services
        self.read = read
        self.interval = interval
        self.service = services[0]
        self._lines: list[str] = []

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
        status = self.query_one("#log-status", Static)
        if message.error:
            status.update(message.error)
            return
        status.update(f"{self.service}: last {len(message.lines)} lines, refreshed every second")
        log = self.query_one(Log)
        lines = message.lines
        if lines[: len(self._lines)] == self._lines and self._lines:
            new = lines[len(self._lines):]
        else:
            log.clear()
            new = lines
        if new:
            log.write_lines(new)
        self._lines = lines

    def action_close(self) -> None:
        self.workers.cancel_group(self, "logs")
        self.dismiss(None)
