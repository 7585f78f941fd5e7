"""A checkbox whose state reads as text, ``[x]`` or ``[ ]``: the same in 16 colours, with
``NO_COLOR`` and on a monochrome screen (Textual's own draws ``▐X▌`` either way, its state
told by colour alone)."""

from __future__ import annotations

from textual.content import Content
from textual.geometry import Size
from textual.widgets import Checkbox


def mark(value: bool) -> str:
    return "[x]" if value else "[ ]"


class TextCheckbox(Checkbox):
    def render(self) -> Content:
        label = self.label.stylize_before(self.get_visual_style("toggle--label"))
        return Content.assemble((mark(self.value), "bold"), " ", label)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return len(mark(self.value)) + 1 + self.label.cell_length
