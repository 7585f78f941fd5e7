"""The bottom pane: the operation under way (with a progress bar) and the latest journal entries."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import ProgressBar, Static

from workbench.tui.presentation import journal_line, shown_in_journal


class Activity(Vertical):
    """What is happening now and what happened last. Shows the progress row only while busy."""

    step: reactive[str | None] = reactive(None, init=False)

    def __init__(self, lines: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lines = lines
        self._journal: tuple[str, ...] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=None, show_eta=False, show_percentage=False, id="progress-bar")
            yield Static("", id="progress-text")
        yield Static("", id="journal")

    def watch_step(self, step: str | None) -> None:
        self.set_class(step is not None, "-busy")
        if self.is_mounted:
            self.query_one("#progress-text", Static).update(Content(f" ⟳ {step}" if step else ""))

    def show_journal(self, entries: list[Any], now: float, me: str = "") -> None:
        lines = tuple(journal_line(e, now, me) for e in [e for e in entries if shown_in_journal(e)][: self.lines])
        if lines == self._journal:
            return
        self._journal = lines
        text = "\n".join(lines) if lines else "nothing has happened yet: f forks prod into a clone"
        self.query_one("#journal", Static).update(Content(text))
