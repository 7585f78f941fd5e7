"""Promote: the file diff that will be committed, a message, and the option to merge (which confirms)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Button, Input, Static

from workbench.tui.dialogs.base import Dialog
from workbench.tui.dialogs.confirm import Confirmed, TypedConfirmDialog
from workbench.tui.widgets.checkbox import TextCheckbox

MAX_LINES = 2000


@dataclass(frozen=True)
class PromoteRequest:
    message: str
    merge: bool


def diff_content(files: list[str], diff_text: str) -> Content:
    """The files and the unified diff, added lines and removed lines marked (and coloured)."""
    parts: list[Content] = []
    if files:
        parts.append(Content.styled(f"{len(files)} file(s): " + ", ".join(files), "bold"))
    else:
        parts.append(Content.styled("no uncommitted change in the worktree: "
                                    "only the branch's own commits would be promoted", "bold"))
    lines = _without_headers(diff_text.splitlines())
    for line in lines[:MAX_LINES]:
        if line.startswith("▸ "):
            parts.append(Content.styled(line, "bold"))
        elif line.startswith("+"):
            parts.append(Content.styled(line, "$text-success"))
        elif line.startswith("-"):
            parts.append(Content.styled(line, "$text-error"))
        elif line.startswith("@@"):
            parts.append(Content.styled(line, "$text-accent"))
        else:
            parts.append(Content(line))
    if len(lines) > MAX_LINES:
        parts.append(Content.styled(f"… {len(lines) - MAX_LINES} more lines (git diff in the worktree)", "italic"))
    return Content("\n").join(parts)


def _without_headers(lines: list[str]) -> list[str]:
    """Git's per-file header (diff --git, index, ---, +++) becomes one ``▸ FILE`` line."""
    out: list[str] = []
    in_header = False
    old_name = ""
    for line in lines:
        if line.startswith("diff --git "):
            in_header = True
            continue
        if not in_header or line.startswith("@@"):
            in_header = False
            out.append(line)
        elif line.startswith("--- "):
            old_name = line[4:].removeprefix("a/")
        elif line.startswith("+++ "):
            new_name = line[4:].removeprefix("b/")
            out.append("▸ " + (old_name if new_name == "/dev/null" else new_name))
        elif line.startswith(("new file", "deleted file", "rename ", "Binary ")):
            out.append(f"  ({line})")
    return out


class PromoteDialog(Dialog[PromoteRequest | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="dialog-cancel")]

    def __init__(self, env: str, branch: str, prod_branch: str, files: list[str], diff_text: str) -> None:
        super().__init__()
        self.env = env
        self.branch = branch
        self.prod_branch = prod_branch
        self.files = files
        self.diff_text = diff_text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide") as box:
            box.border_title = f"Promote {self.env} → commit on {self.branch}"
            with VerticalScroll(id="promote-diff"):
                yield Static(diff_content(self.files, self.diff_text))
            yield Static("Commit message:", classes="prompt")
            yield Input(placeholder="(one line: what the fix does)", id="message", compact=True)
            yield Static("", id="message-problem", classes="problem")
            yield TextCheckbox(f"also merge into {self.prod_branch} (prod's branch; asks to confirm)", id="merge",
                               compact=True)
            with Horizontal(classes="buttons"):
                yield Button("Promote", variant="primary", id="promote", disabled=True, compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#message", Input).focus()

    @on(Input.Changed, "#message")
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#promote", Button).disabled = not event.value.strip()
        self.query_one("#message-problem", Static).update("")

    @on(Input.Submitted, "#message")
    @on(Button.Pressed, "#promote")
    def _promote(self) -> None:
        message = self.query_one("#message", Input).value.strip()
        if not message:
            self.query_one("#message-problem", Static).update(
                Content("✖ nothing is committed without a message: type one line saying what the fix does"))
            return
        if not self.query_one("#merge", TextCheckbox).value:
            self.dismiss(PromoteRequest(message=message, merge=False))
            return

        def merged(confirmed: Confirmed | None) -> None:
            if confirmed is not None:
                self.dismiss(PromoteRequest(message=message, merge=True))

        self.app.push_screen(TypedConfirmDialog(
            f"Merge into {self.prod_branch}",
            f"This commits the fix on {self.branch} and merges it into {self.prod_branch}, prod's branch. "
            "A merge into prod is not undone by repro-tui.",
            expected=self.prod_branch, button="Merge"), merged)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
