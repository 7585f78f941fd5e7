"""Naming a snapshot, and choosing one (to reset to, or to compare with)."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Input, OptionList, Static
from textual.widgets.option_list import Option

from workbench.names import FORKED, first_free, name_problem
from workbench.tui.dialogs.base import Dialog


def snapshot_name_problem(name: str, taken: set[str]) -> str | None:
    problem = name_problem(name)
    if problem:
        return problem
    if name == FORKED:
        return f"'{FORKED}' is the snapshot every fork records"
    if name in taken:
        return f"a snapshot named {name!r} exists already"
    return None


def default_snapshot_name(taken: set[str]) -> str:
    return first_free("s", taken)


class SnapshotNameDialog(Dialog[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="dialog-cancel")]

    def __init__(self, env: str, taken: set[str]) -> None:
        super().__init__()
        self.env = env
        self.taken = taken
        self.default_name = default_snapshot_name(taken)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box") as box:
            box.border_title = f"Snapshot {self.env}"
            yield Static("Name (a-z, 0-9 and '-'):", classes="prompt")
            yield Input(placeholder=f"(empty: {self.default_name})", id="name", compact=True)
            yield Static("", id="name-problem", classes="problem")
            with Horizontal(classes="buttons"):
                yield Button("Snapshot", variant="primary", id="ok", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def typed_name(self) -> str:
        return self.query_one("#name", Input).value.strip() or self.default_name

    @on(Input.Changed, "#name")
    def _check(self) -> None:
        problem = snapshot_name_problem(self.typed_name(), self.taken)
        self.query_one("#name-problem", Static).update(Content(f"✖ {problem}" if problem else ""))
        self.query_one("#ok", Button).disabled = problem is not None

    @on(Input.Submitted, "#name")
    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        if snapshot_name_problem(self.typed_name(), self.taken) is None:
            self.dismiss(self.typed_name())

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ChooseDialog(Dialog[str | None]):
    """Pick one of a few choices (snapshots, services): enter picks, escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="dialog-cancel")]

    def __init__(self, title: str, explanation: str, choices: list[tuple[str, str]], current: str | None = None):
        super().__init__()
        self.title_text = title
        self.explanation = explanation
        self.choices = choices
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box") as box:
            box.border_title = self.title_text
            yield Static(Content(self.explanation), classes="prompt")
            yield OptionList(*[Option(Content(label), id=value) for value, label in self.choices], id="choices")

    def on_mount(self) -> None:
        choices = self.query_one("#choices", OptionList)
        ids = [value for value, _ in self.choices]
        if self.current in ids:
            choices.highlighted = ids.index(self.current)
        choices.focus()

    @on(OptionList.OptionSelected, "#choices")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
