"""A long text to read (the checks' answers, prod's drift, the post-mortem), scrollable.

The drift view also offers ``f``: fork prod into a clone that carries the drift."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Markdown, Static

from workbench.formats import printable
from workbench.tui.dialogs.base import Dialog

FORK = "fork"


class ReadingDialog(Dialog[str | None]):
    """Dismissed with None, or with ``FORK`` when it offers a fork and ``f`` is pressed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close", id="dialog-cancel"),
        Binding("f", "fork", "Fork with it", id="dialog-fork"),
    ]

    def __init__(self, title: str, text: str, *, markdown: bool = False, note: str = "",
                 offers_fork: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.text = text if markdown else printable(text)   # a body or a drift line may hold controls
        self.markdown = markdown
        self.note = note
        self.offers_fork = offers_fork

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide") as box:
            box.border_title = f"{self.title_text}  (esc closes)"
            if self.note:
                yield Static(Content(self.note), classes="prompt")
            with VerticalScroll(id="reading"):
                yield Markdown(self.text) if self.markdown else Static(Content(self.text))

    def on_mount(self) -> None:   # (Dialog's own on_mount runs too: Textual calls each class's)
        self.query_one("#reading").focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.offers_fork if action == "fork" else True

    def action_fork(self) -> None:
        self.dismiss(FORK)

    def action_close(self) -> None:
        self.dismiss(None)
