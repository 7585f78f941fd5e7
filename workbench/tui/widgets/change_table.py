"""A virtual table of changes: it paints only the rows on screen.

Textual's DataTable builds every row up front (about 115 µs a row), so a diff with a
million changed rows would freeze the screen for two minutes. This table holds a
reference to the changes and a sequence of positions into them (a ``range`` or an
``array``), and formats a row only when that row is painted: the first page of any diff
costs the same few milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from workbench.tui.presentation import KIND_TONES, change_cells

DATA_HEADERS = ("", "key", "column", "values", "")
OTHER_HEADERS = ("", "path", "values", "")


class ChangeTable(ScrollView, can_focus=True):
    """Changes of one section (or one table of the Data tab), one per line, with a cursor."""

    DEFAULT_CSS = """
    ChangeTable {
        height: 1fr;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
        & > .change-table--header { text-style: bold; color: $text-muted; }
        & > .change-table--cursor { background: $block-cursor-blurred-background; }
        &:focus > .change-table--cursor {
            background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold;
        }
        & > .change-table--good { color: $text-success; }
        & > .change-table--bad { color: $text-error; }
        & > .change-table--warn { color: $text-warning; }
        & > .change-table--intent { color: $text-muted; text-style: italic; }
        & > .change-table--empty { color: $text-muted; }
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "change-table--header", "change-table--cursor", "change-table--good", "change-table--bad",
        "change-table--warn", "change-table--intent", "change-table--empty",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "edge(0)", "First", show=False),
        Binding("end", "edge(1)", "Last", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True)

    class Highlighted(Message):
        """The cursor moved onto a change (None: the table is empty)."""

        def __init__(self, table: ChangeTable, change: Any | None) -> None:
            super().__init__()
            self.table = table
            self.change = change

        @property
        def control(self) -> ChangeTable:
            return self.table

    def __init__(self, section: str, empty_text: str = "no change", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.section = section
        self.empty_text = empty_text
        self._changes: Sequence[Any] = ()
        self._view: Sequence[int] = range(0)
        self._widths: tuple[int, ...] | None = None
        self._cells: dict[int, tuple[str, ...]] = {}

    # data ----------------------------------------------------------------------
    def set_changes(self, changes: Sequence[Any], view: Sequence[int] | None = None,
                    empty_text: str | None = None) -> None:
        """Show ``changes`` (all, or those at the positions in ``view``). Costs O(1)."""
        keep = self.current_change()
        self._changes = changes
        self._view = view if view is not None else range(len(changes))
        if empty_text is not None:
            self.empty_text = empty_text
        self._widths = None
        self._cells.clear()
        self.virtual_size = Size(self.size.width, len(self._view) + 1)
        cursor = 0
        if keep is not None and len(self._view) < 5000:  # keep the cursor on the same change if cheap
            for i, pos in enumerate(self._view):
                if changes[pos] is keep or _same(changes[pos], keep):
                    cursor = i
                    break
        self.cursor = min(cursor, max(0, len(self._view) - 1))
        self.refresh()

    @property
    def row_count(self) -> int:
        return len(self._view)

    def current_change(self) -> Any | None:
        if not len(self._view) or self.cursor >= len(self._view):
            return None
        return self._changes[self._view[self.cursor]]

    def row_cells(self, index: int) -> tuple[str, ...]:
        cells = self._cells.get(index)
        if cells is None:
            if len(self._cells) > 512:
                self._cells.clear()
            cells = self._cells[index] = change_cells(self._changes[self._view[index]], self.section)
        return cells

    # cursor ----------------------------------------------------------------------
    def watch_cursor(self, cursor: int) -> None:
        self._keep_cursor_visible()
        self.post_message(self.Highlighted(self, self.current_change()))
        self.refresh()

    def _page_height(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _keep_cursor_visible(self) -> None:
        top = int(self.scroll_offset.y)
        height = self._page_height()
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def action_move(self, delta: int) -> None:
        if len(self._view):
            self.cursor = max(0, min(len(self._view) - 1, self.cursor + delta))

    def action_page(self, direction: int) -> None:
        self.action_move(direction * self._page_height())

    def action_edge(self, end: int) -> None:
        if len(self._view):
            self.cursor = len(self._view) - 1 if end else 0

    def on_resize(self) -> None:
        self._widths = None
        self.virtual_size = Size(self.size.width, len(self._view) + 1)

    # painting ------------------------------------------------------------------------
    def _column_widths(self, width: int) -> tuple[int, ...]:
        """Widths from the first rows only, so they cost the same for any number of rows."""
        if self._widths is not None and sum(self._widths) + len(self._widths) - 1 == width:
            return self._widths
        headers = DATA_HEADERS if self.section == "data" else OTHER_HEADERS
        sample = [self.row_cells(i) for i in range(min(len(self._view), 200))]
        natural = [max([cell_len(h)] + [cell_len(r[c]) for r in sample]) for c, h in enumerate(headers)]
        gaps = len(headers) - 1
        widths = [1] + [0] * (len(headers) - 1)
        intent = min(natural[-1], 11)
        widths[-1] = intent
        room = max(10, width - gaps - 1 - intent)
        if self.section == "data":
            key = min(natural[1], max(4, room // 4))
            column = min(natural[2], max(6, room // 4))
            widths[1], widths[2] = key, column
            widths[3] = max(4, room - key - column)
        else:
            path = min(natural[1], max(8, (room * 11) // 20))
            widths[1] = path
            widths[2] = max(4, room - path)
        # give what the values do not need back to nothing: keep the total exact
        total = sum(widths) + gaps
        if total != width:
            widths[-2] = max(1, widths[-2] + width - total)
        self._widths = tuple(widths)
        return self._widths

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"change-table--{name}", partial=True)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if width <= 0:
            return Strip.blank(0)
        if not len(self._view):  # no header over nothing: the empty text says why
            if y == 0 and self.empty_text:
                style = base + self._style("empty")
                return Strip([Segment(set_cell_size(f"  {self.empty_text}", width), style)], width)
            return Strip.blank(width, base)
        widths = self._column_widths(width)
        if y == 0:
            headers = DATA_HEADERS if self.section == "data" else OTHER_HEADERS
            style = base + self._style("header")
            return self._strip(headers, widths, [style] * len(headers), style, width)
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self._view):
            return Strip.blank(width, base)
        cells = self.row_cells(index)
        change = self._changes[self._view[index]]
        tone = KIND_TONES.get(getattr(change, "kind", ""), "warn")
        row_style = base + self._style("cursor") if index == self.cursor else base
        styles = [row_style + self._style(tone)] + [row_style] * (len(cells) - 2) + [row_style + self._style("intent")]
        return self._strip(cells, widths, styles, row_style, width)

    @staticmethod
    def _strip(cells: Sequence[str], widths: Sequence[int], styles: Sequence[Style], gap: Style,
               width: int) -> Strip:
        segments: list[Segment] = []
        for i, (text, w) in enumerate(zip(cells, widths, strict=False)):
            if i:
                segments.append(Segment(" ", gap))
            if cell_len(text) > w:
                text = _shorten(text, w, from_left=(i == 1))
            segments.append(Segment(set_cell_size(text, w), styles[i]))
        strip = Strip(segments)
        return strip.crop_extend(0, width, gap)


def _shorten(text: str, width: int, from_left: bool) -> str:
    """Cut to ``width`` cells with an ellipsis; paths keep their end (the specific part)."""
    if width <= 1:
        return set_cell_size(text, width)
    if from_left:
        tail = text[-(width - 1):]
        while cell_len(tail) > width - 1:
            tail = tail[1:]
        return "…" + tail
    return set_cell_size(text, width - 1) + "…"


def _same(a: Any, b: Any) -> bool:
    return getattr(a, "path", None) == getattr(b, "path", None) and getattr(a, "path", None) is not None
