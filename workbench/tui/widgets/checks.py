"""The Checks pane: whether each check of repro.yaml passes on the selected environment,
side by side with prod ("reproduces: 500 on prod and bug1")."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from workbench.tui.incident_text import CheckLine
from workbench.tui.widgets.environments import TONE_STYLES


def check_prompt(line: CheckLine) -> Content:
    tone = TONE_STYLES.get(line.tone, "")
    first = Content.assemble((line.symbol, tone), " ", (line.name, "bold"), "  ", (line.headline, tone))
    return Content("\n").join([first, Content.assemble("  ", (line.detail, "$text-muted"))])


class ChecksList(OptionList):
    """One two-line entry per check; rebuilt only when what it shows has changed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: tuple[Any, ...] | None = None

    def show(self, lines: list[CheckLine], placeholder: str = "") -> None:
        key = (tuple(lines), placeholder)
        if key == self._shown:
            return
        self._shown = key
        keep = self.highlighted
        self.clear_options()
        if not lines:
            self.add_option(Option(Content.styled(placeholder, "$text-muted"), disabled=True))
            return
        self.add_options([Option(check_prompt(line), id=line.name) for line in lines])
        self.highlighted = keep if keep is not None and keep < len(lines) else 0
