"""A confirmation that must be typed, for what cannot be undone (destroy, merge into prod)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Input, Static

from workbench.tui.dialogs.base import Dialog
from workbench.tui.widgets.checkbox import TextCheckbox


@dataclass(frozen=True)
class Confirmed:
    option: bool = False      # the dialog's checkbox, when it has one (e.g. destroy --force)


class TypedConfirmDialog(Dialog[Confirmed | None]):
    """Type ``expected`` to enable the button; Enter before that says why nothing happens.
    Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="dialog-cancel")]

    def __init__(self, title: str, explanation: str, expected: str, button: str,
                 option: str | None = None) -> None:
        super().__init__()
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
            yield Input(placeholder=f"(type {self.expected} here)", id="typed", compact=True)
            yield Static("", id="typed-problem", classes="problem")
            if self.option:
                yield TextCheckbox(self.option, id="option", compact=True)
            with Horizontal(classes="buttons"):
                yield Button(self.button, variant="error", id="confirm", disabled=True, compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    @on(Input.Changed, "#typed")
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = event.value.strip() != self.expected
        self.query_one("#typed-problem", Static).update("")

    @on(Input.Submitted, "#typed")
    def _submitted(self, event: Input.Submitted) -> None:
        if not self.query_one("#confirm", Button).disabled:
            self._confirm()
            return
        typed = event.value.strip()
        said = f"you typed {typed!r}" if typed else "nothing typed"
        self.query_one("#typed-problem", Static).update(
            Content(f"✖ {said}: type {self.expected} exactly to {self.button.lower()}; esc cancels"))

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        option = self.query_one("#option", TextCheckbox).value if self.option else False
        self.dismiss(Confirmed(option=option))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
