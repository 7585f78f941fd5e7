"""Every key, made from the same table as the bindings (so it is never out of date)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Static

from workbench.tui.dialogs.base import Dialog
from workbench.tui.keymap import effective_keys, key_display


def help_content(keymap: dict[str, str], keymap_file: Path | None) -> Content:
    rows = [(key_display(keys), k.help, k.id) for k, keys in effective_keys(keymap)]
    width = max(len(keys) for keys, _, _ in rows)
    lines = [Content.assemble((keys.rjust(width), "bold $text-accent"), "  ", text) for keys, text, _ in rows]
    lines.append(Content(""))
    lines.append(Content.styled("▶ marks the environment every key acts on, whatever pane has the keyboard;",
                                "$text-muted"))
    lines.append(Content.styled("1 2 3 switch tabs and leave the keyboard where it is.", "$text-muted"))
    lines.append(Content.styled("States: ● running  ○ stopped  ◐ partial  ✖ crashed  ! cut off  ◇ no service",
                                "$text-muted"))
    lines.append(Content.styled("Changes: + added  - removed  ~ changed  (override) (scrub) = intended",
                                "$text-muted"))
    where = _home(keymap_file) if keymap_file else "keymap.toml in your config directory"
    lines.append(Content.styled(f"Remap a key by its id in {where}, e.g.  fork = \"n\"", "$text-muted"))
    lines.append(Content.styled("Ids: " + ", ".join(i for _, _, i in rows), "$text-muted"))
    return Content("\n").join(lines)


def _home(path: Path) -> str:
    """``~/.config/...`` rather than the full path of the home folder."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


class HelpDialog(Dialog[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", id="dialog-cancel"),
    ]

    def __init__(self, keymap: dict[str, str], keymap_file: Path | None) -> None:
        super().__init__()
        self.keymap = keymap
        self.keymap_file = keymap_file

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide") as box:
            box.border_title = "Keys  (esc closes)"
            with VerticalScroll():
                yield Static(help_content(self.keymap, self.keymap_file))

    def action_close(self) -> None:
        self.dismiss(None)
