"""The mail a clone's services sent, as its mail sink caught it (nothing is delivered):
time, from, to and subject, refreshed every two seconds; Enter opens one, secrets masked."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static, TextArea
from textual.worker import get_current_worker

from workbench.errors import ReproError
from workbench.tui.dialogs.base import Dialog

ListMail = Callable[[], list[list[str]]]      # rows: id, time, from, to, subject (called in a thread)
ReadMail = Callable[[int], str]               # one message as text (called in a thread)


@dataclass
class MailListed(Message):
    rows: list[list[str]]
    error: str | None = None


@dataclass
class MailOpened(Message):
    text: str


def _error(exc: Exception) -> str:
    return str(exc) if isinstance(exc, ReproError) else f"{type(exc).__name__}: {exc}"


class MessageDialog(Dialog[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close", id="dialog-cancel")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide") as box:
            box.border_title = f"{self.title_text}  (esc: back to the list)"
            yield TextArea(self.text, read_only=True, id="mail-text", soft_wrap=True, show_line_numbers=False)

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_close(self) -> None:
        self.dismiss(None)


class MailDialog(Dialog[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close", id="dialog-cancel")]

    def __init__(self, env: str, listing: ListMail, read: ReadMail, interval: float = 2.0) -> None:
        super().__init__()
        self.env = env
        self.listing = listing
        self.read = read
        self.interval = interval
        self._rows: list[list[str]] = []
        self._status = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide") as box:
            box.border_title = f"Mail of {self.env}  (enter opens one, esc closes)"
            yield Static("", id="mail-status", classes="prompt")
            table: DataTable = DataTable(id="mail", cursor_type="row", zebra_stripes=True)
            table.add_columns("Time", "From", "To", "Subject")
            yield table

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.poll()

    @work(thread=True, exclusive=True, exit_on_error=False, group="mail")
    def poll(self) -> None:
        worker = get_current_worker()
        while not worker.is_cancelled:
            try:
                self.post_message(MailListed(self.listing()))
            except Exception as exc:  # never a traceback on the screen
                self.post_message(MailListed([], error=_error(exc)))
                return
            deadline = time.monotonic() + self.interval
            while time.monotonic() < deadline and not worker.is_cancelled:
                time.sleep(0.05)

    def on_mail_listed(self, message: MailListed) -> None:
        n = len(message.rows)
        text = message.error or (f"{n} message(s) caught by the mail sink, none delivered" if n else
                                 f"no mail yet: what {self.env}'s services send arrives here (none is delivered)")
        if text != self._status:   # drawn only when it changes: an idle dialog writes nothing to the terminal
            self._status = text
            self.query_one("#mail-status", Static).update(text)
        if message.error or message.rows == self._rows:
            return
        table = self.query_one(DataTable)
        for row in message.rows[len(self._rows):] if message.rows[:len(self._rows)] == self._rows else []:
            table.add_row(*row[1:], key=row[0])
        if message.rows[:len(self._rows)] != self._rows:
            table.clear()
            for row in message.rows:
                table.add_row(*row[1:], key=row[0])
        self._rows = message.rows

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if key is not None:
            self.open(int(key))

    @work(thread=True, exit_on_error=False, group="mail-open")
    def open(self, mail_id: int) -> None:
        try:
            self.post_message(MailOpened(self.read(mail_id)))
        except Exception as exc:  # never a traceback on the screen
            self.post_message(MailOpened(_error(exc)))

    def on_mail_opened(self, message: MailOpened) -> None:
        subject = next((line[len("Subject: "):] for line in message.text.splitlines()
                        if line.startswith("Subject: ")), "a message")
        self.app.push_screen(MessageDialog(subject, message.text))

    def action_close(self) -> None:
        self.workers.cancel_group(self, "mail")
        self.dismiss(None)
