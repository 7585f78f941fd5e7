"""The left pane: the environments, and the snapshots of the selected clone."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from workbench.tui.presentation import EnvLine, snapshot_line

TONE_STYLES = {"good": "$text-success", "bad": "$text-error", "warn": "$text-warning", "quiet": "$text-muted"}


TARGET = "▶ "
"""Marks the selected environment, the one every key acts on, whatever pane has the keyboard
(a mark, not only a colour: it reads the same in 16 colours and with NO_COLOR)."""


def env_prompt(line: EnvLine, selected: bool = False) -> Content:
    """Two lines: ``▶ ● b1  running  2h  alice`` and ``    repro/b1  3 snaps  :8001``."""
    tone = TONE_STYLES.get(line.tone, "")
    mark = TARGET if selected else " " * len(TARGET)
    first = Content.assemble((mark, "bold"), (line.symbol, tone), " ", (line.name, "bold"), "  ",
                             (line.state, tone), (f"  {line.age}" if line.age else "", "$text-muted"),
                             (f"  {line.owner}" if line.owner else "", "$text-muted"))
    second = Content.assemble(" " * len(TARGET), "  ", (line.second, "$text-muted"))
    return Content("\n").join([first, second])


class EnvList(OptionList):
    """Environments, prod first. Rebuilt only when what it shows has changed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: tuple[EnvLine, ...] = ()
        self._marked: str | None = None

    def show(self, lines: list[EnvLine]) -> None:
        if tuple(lines) == self._shown:
            return
        keep = self.selected_name
        names = [line.name for line in lines]
        target = keep if keep in names else (names[0] if names else None)
        self._shown = tuple(lines)
        self._marked = target
        self.clear_options()
        self.add_options([Option(env_prompt(line, line.name == target), id=line.name) for line in lines])
        if target is not None:
            self.highlighted = names.index(target)

    def watch_highlighted(self, highlighted: int | None) -> None:
        """The mark follows the highlight."""
        super().watch_highlighted(highlighted)
        for i, line in enumerate(self._shown[: self.option_count]):
            if (i == highlighted) != (line.name == self._marked):
                self.replace_option_prompt_at_index(i, env_prompt(line, i == highlighted))
        inside = highlighted is not None and highlighted < len(self._shown)
        self._marked = self._shown[highlighted].name if inside and highlighted is not None else None

    @property
    def selected_name(self) -> str | None:
        if self.highlighted is None or self.highlighted >= self.option_count:
            return None
        return self.get_option_at_index(self.highlighted).id

    def select_name(self, name: str) -> None:
        for i, line in enumerate(self._shown):
            if line.name == name:
                self.highlighted = i
                return


class SnapshotList(OptionList):
    """The selected clone's snapshots, oldest first, with age and whether a reset is instant."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: tuple[Any, ...] | None = None

    def show(self, snapshots: list[Any], now: float, last_reset: str | None, placeholder: str) -> None:
        rows = tuple(snapshot_line(s, now, last_reset) for s in snapshots)
        key = (rows, placeholder)
        if key == self._shown:
            return
        self._shown = key
        self.clear_options()
        if not rows:
            self.add_option(Option(Content.styled(placeholder, "$text-muted"), disabled=True))
            return
        width = max(len(name) for name, _, _ in rows)
        for name, when, notes in rows:
            prompt = Content.assemble((name.ljust(width), "bold"), "  ", (when.rjust(3), "$text-muted"),
                                      "  ", (notes, "$text-muted"))
            self.add_option(Option(prompt, id=name))
