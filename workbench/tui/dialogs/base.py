"""What every dialog shares: a line of its own for notifications.

Textual shows a notification as a toast in the bottom right corner, over whatever is there.
Over a dialog that would hide the dialog's own text (a confirmation, a commit message)
for seconds. A dialog instead shows the notifications that arrive while it is open on a
line below its box, which its box never shares. The toasts already shown when a dialog
opens are cleared (their text is in the Activity pane).
"""

from __future__ import annotations

from typing import TypeVar

from textual.content import Content
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Static

T = TypeVar("T")

MARKS = {"information": "ℹ", "warning": "⚠", "error": "✖"}


class Dialog(ModalScreen[T]):
    """A modal dialog (``classes="dialog"``) with a notification line below its box."""

    def __init__(self) -> None:
        super().__init__(classes="dialog")
        self._notice_timer: Timer | None = None

    def on_mount(self) -> None:
        self.mount(Static("", id="dialog-notice"))
        # the toasts of the screen below stay drawn for seconds, over the dialog's own text in a
        # real terminal: they go (what they said is in the Activity pane)
        self.app.clear_notifications()

    def show_notice(self, message: str, title: str, severity: str, timeout: float) -> None:
        """Show a notification on the dialog's own line (for ``timeout`` seconds)."""
        notices = self.query("#dialog-notice")
        if not notices:
            return
        notice = notices.first(Static)
        head = f"{MARKS.get(severity, '·')} {title}: " if title else f"{MARKS.get(severity, '·')} "
        notice.update(Content(head + message.strip().replace("\n", " ")))
        notice.set_class(True, "-shown")
        notice.set_class(severity == "error", "-error")
        notice.set_class(severity == "warning", "-warning")
        if self._notice_timer is not None:
            self._notice_timer.stop()
        self._notice_timer = self.set_timer(max(timeout, 1.0), lambda: notice.set_class(False, "-shown"))
