"""Fork: a name, checked as it is typed, and a source (prod by default)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Input, Select, Static

from workbench.names import PROD, first_free, name_problem
from workbench.tui.dialogs.base import Dialog


@dataclass(frozen=True)
class ForkRequest:
    source: str
    name: str


def fork_name_problem(name: str, taken: set[str]) -> str | None:
    """Why ``name`` cannot name a new clone, or None (the engine checks again)."""
    problem = name_problem(name)
    if problem:
        return problem
    if name == PROD:
        return "'prod' is the environment every clone is forked from"
    if name in taken:
        return f"a clone named {name!r} exists already"
    return None


def suggest_name(taken: set[str]) -> str:
    return first_free("bug", taken)


class ForkDialog(Dialog[ForkRequest | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="dialog-cancel")]

    def __init__(self, sources: list[str], taken: set[str], source: str = PROD) -> None:
        super().__init__()
        self.sources = sources
        self.taken = taken
        self.default_name = suggest_name(taken)
        self.source = source if source in sources else PROD

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box") as box:
            box.border_title = "Fork a new clone"
            yield Static("Name (a-z, 0-9 and '-', e.g. bug-1042):", classes="prompt")
            yield Input(placeholder=f"(empty: {self.default_name})", id="name", compact=True)
            yield Static("", id="name-problem", classes="problem")
            yield Static("Source (prod, a clone, or a clone's snapshot):", classes="prompt")
            yield Select([(s, s) for s in self.sources], value=self.source, allow_blank=False, id="source",
                         compact=True)
            with Horizontal(classes="buttons"):
                yield Button("Fork", variant="primary", id="fork", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def typed_name(self) -> str:
        return self.query_one("#name", Input).value.strip() or self.default_name

    @on(Input.Changed, "#name")
    def _check(self) -> None:
        problem = fork_name_problem(self.typed_name(), self.taken)
        self.query_one("#name-problem", Static).update(Content(f"✖ {problem}" if problem else ""))
        self.query_one("#fork", Button).disabled = problem is not None

    @on(Input.Submitted, "#name")
    @on(Button.Pressed, "#fork")
    def _fork(self) -> None:
        name = self.typed_name()
        if fork_name_problem(name, self.taken) is None:
            source = self.query_one("#source", Select).value
            self.dismiss(ForkRequest(source=str(source), name=name))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
