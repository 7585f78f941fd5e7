"""A confirmation that must be typed, for what cannot be undone (destroy, merge into prod)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Static


@dataclass(frozen=True)
class Confirmed:
    option: bool = False      # the dialog's checkbox, when it has one (e.g. destroy --force)


class TypedConfirmDialog(ModalScreen[Confirmed | None]):
    """Type ``expected`` to enable the button. Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="dialog-cancel")]

    def __init__(self, title: str, explanation: str, expected: str, button: str,
                 option: str | None = None) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.explanation = explanation
        self.expected = expected
        self.button = button
        self.option = option

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box danger") as box:
            box.border_title = self.title_text
            yield Static(Content(self.explanation), classes="explanation")
            yield Static(Content(f"Type {self.expected} to confirm:"), classes="prompt")
            yield Input(placeholder=self.expected, id="typed", compact=True)
            if self.option:
                yield Checkbox(self.option, id="option", compact=True)
            with Horizontal(classes="buttons"):
                yield Button(self.button, variant="error", id="confirm", disabled=True, compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    @on(Input.Changed, "#typed")
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = event.value.strip() != self.expected

    @on(Input.Submitted, "#typed")
    def _submitted(self) -> None:
        if not self.query_one("#confirm", Button).disabled:
            self._confirm()

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        option = self.query_one("#option", Checkbox).value if self.option else False
        self.dismiss(Confirmed(option=option))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
