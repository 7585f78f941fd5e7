"""The right pane: the diff of the selected clone, in three tabs with counts in their labels."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Input, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option

from workbench.tui.presentation import (
    DiffViews,
    change_detail,
    empty_text,
    group_more,
    tab_label,
    table_line,
)
from workbench.tui.widgets.change_table import ChangeTable

TITLES = {"config": "Config", "services": "Services", "data": "Data"}


class DiffView(Vertical):
    """Config, Services and Data. Data: stores and tables with counts, then the rows of one table."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.views: DiffViews | None = None
        self._group_index = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="diff-status")
        yield Input(placeholder="(filter: part of a path or a value; enter keeps it, esc clears it)",
                    id="filter", compact=True)
        with TabbedContent(id="tabs"):
            for section in ("config", "services"):
                with TabPane(TITLES[section], id=section):
                    yield ChangeTable(section, id=f"{section}-changes")
                    yield Static("", id=f"{section}-detail", classes="detail")
            with TabPane(TITLES["data"], id="data"):
                yield OptionList(id="tables")
                yield ChangeTable("data", id="data-changes")
                yield Static("", id="data-detail", classes="detail")

    # showing a diff ---------------------------------------------------------------
    def set_status(self, text: str) -> None:
        self.query_one("#diff-status", Static).update(Content(text))

    def clear(self, status: str) -> None:
        """Nothing to compare (prod is selected, or the diff is not there yet)."""
        self.views = None
        self.set_status(status)
        tabs = self.query_one(TabbedContent)
        for section in TITLES:
            tabs.get_tab(section).label = Content(TITLES[section])
            self.query_one(f"#{section}-changes", ChangeTable).set_changes([], empty_text="")
            self.query_one(f"#{section}-detail", Static).update("")
        self.query_one("#tables", OptionList).clear_options()

    def show(self, views: DiffViews) -> None:
        self.views = views
        report = views.report
        tabs = self.query_one(TabbedContent)
        for section in TITLES:
            unexpected, intended, more = views.counts[section]
            tabs.get_tab(section).label = Content(tab_label(TITLES[section], unexpected, intended, more))
            if section == "data":
                continue
            table = self.query_one(f"#{section}-changes", ChangeTable)
            table.set_changes(getattr(report, section), views.sections[section],
                              empty_text=empty_text(section, intended, views.show_intended, views.needle))
            if not table.row_count:
                self.query_one(f"#{section}-detail", Static).update("")
        self._show_tables()

    def _show_tables(self) -> None:
        assert self.views is not None
        views = self.views
        tables = self.query_one("#tables", OptionList)
        keep = self._current_group_key()
        shown = [(i, g) for i, g in enumerate(views.groups) if len(views.group_views[i])]
        tables.clear_options()
        for i, group in shown:
            line = table_line(group, len(views.group_views[i]), group_more(views.report, group))
            tables.add_option(Option(Content(line), id=str(i)))
        if not shown:
            _, intended, _ = views.counts["data"]
            self._group_index = -1
            rows = self.query_one("#data-changes", ChangeTable)
            rows.set_changes([], empty_text=empty_text("data", intended, views.show_intended, views.needle))
            self.query_one("#data-detail", Static).update("")
            return
        position = 0
        for n, (_i, group) in enumerate(shown):
            if (group.store, group.table) == keep:
                position = n
        tables.highlighted = position
        self._show_group(shown[position][0])

    def _current_group_key(self) -> tuple[str, str | None] | None:
        if self.views is None or not (0 <= self._group_index < len(self.views.groups)):
            return None
        group = self.views.groups[self._group_index]
        return group.store, group.table

    def _show_group(self, index: int) -> None:
        assert self.views is not None
        self._group_index = index
        rows = self.query_one("#data-changes", ChangeTable)
        rows.set_changes(self.views.report.data, self.views.group_views[index])

    @on(OptionList.OptionHighlighted, "#tables")
    def _table_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if self.views is not None and event.option.id is not None:
            index = int(event.option.id)
            if index != self._group_index:
                self._show_group(index)

    @on(ChangeTable.Highlighted)
    def _change_highlighted(self, event: ChangeTable.Highlighted) -> None:
        detail = self.query_one(f"#{event.table.section}-detail", Static)
        detail.update(Content(change_detail(event.change)) if event.change is not None else "")

    @on(OptionList.OptionSelected, "#tables")
    def _table_chosen(self) -> None:
        self.query_one("#data-changes", ChangeTable).focus()

    # tabs -------------------------------------------------------------------------
    def show_tab(self, section: str, focus: bool = False) -> None:
        """Show a tab; the keyboard moves into it only with ``focus`` (the environments keep it
        otherwise: ↑↓ go on choosing the environment every key acts on)."""
        self.query_one(TabbedContent).active = section
        if focus:
            self.focus_changes()

    def focus_changes(self) -> None:
        """The keyboard into the active tab's changes (↑↓ move through them, Enter shows one)."""
        self.query_one(f"#{self.active_tab}-changes", ChangeTable).focus()

    def current_change(self) -> tuple[str, object] | None:
        """The highlighted change of the active tab and its section, if any."""
        section = self.active_tab
        change = self.query_one(f"#{section}-changes", ChangeTable).current_change()
        return (section, change) if change is not None else None

    @property
    def active_tab(self) -> str:
        return self.query_one(TabbedContent).active or "config"
