"""One change in full (Enter on a change): its whole path and both values, never cut,
a row side by side column by column; scrollable (↑↓, PgUp/PgDn), Esc closes."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Static

from workbench.tui.details import Detail
from workbench.tui.dialogs.base import Dialog


class DetailDialog(Dialog[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "close", "Close", id="dialog-cancel")]

    def __init__(self, target: str, against: str, detail: Detail) -> None:
        super().__init__()
        self.target = target
        self.against = against
        self.detail = detail

    def compose(self) -> ComposeResult:
        detail = self.detail
        with Vertical(classes="dialog-box wide") as box:
            box.border_title = f"{self.target} against {self.against}: one change  (esc closes)"
            with VerticalScroll(id="detail-scroll"):
                with Grid(classes="detail-facts"):
                    for label, text in detail.facts:
                        yield Static(Content(label), classes="detail-label")
                        yield Static(Content(text), classes="detail-value")
                if detail.rows:
                    with Grid(classes="detail-rows"):
                        for head in ("column", *detail.columns):
                            yield Static(Content(head), classes="detail-head")
                        for column, left, right in detail.rows:
                            yield Static(Content(column), classes="detail-label")
                            yield Static(Content(left), classes="detail-value" + (" -differs" if left != right
                                                                                   else ""))
                            yield Static(Content(right), classes="detail-value" + (" -differs" if left != right
                                                                                    else ""))
                if detail.lines:
                    yield Static(Content("\n".join(detail.lines)), classes="detail-lines")

    def on_mount(self) -> None:
        self.query_one("#detail-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)
