"""The incident keys of the main screen, kept beside it: ``k`` runs the checks, ``K`` shows
their answers on prod and the clone, ``D`` shows prod's drift (``f`` there forks a clone
that carries it), ``W`` writes the post-mortem and shows it.

Functions of the screen (``MainScreen`` calls them from its actions and its event
handler): the engine is reached through the gateway only, the words come from
``incident_text``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.names import PROD
from workbench.tui.gateway import call
from workbench.tui.incident_text import check_lines, checks_detail
from workbench.tui.messages import ChecksRun, CloneForked, DriftLoaded, ReportWritten
from workbench.tui.widgets.activity import Activity
from workbench.tui.widgets.checks import ChecksList

if TYPE_CHECKING:
    from workbench.tui.dialogs.fork import ForkRequest
    from workbench.tui.main_screen import MainScreen


def show_checks(screen: MainScreen) -> None:
    """The Checks pane for the selected environment."""
    env = screen.selected
    lines = check_lines(env, screen.wb.checks, screen.check_results) if env else []
    screen.query_one(ChecksList).show(lines, "select an environment")


def run_checks(screen: MainScreen) -> None:
    env = screen.selected or PROD
    screen.run_operation("check", env, ChecksRun, call("check", env=env, trigger="key"))


def show_check_details(screen: MainScreen) -> None:
    from workbench.tui.dialogs.reading import ReadingDialog

    env = screen.selected or PROD
    text = checks_detail(env, screen.wb.checks, screen.check_results)
    beside = "" if env == PROD else " beside prod"
    screen.app.push_screen(ReadingDialog(f"Checks of {env}{beside}", text,
                                         note=f"The latest answers; {screen.key_for('check')} runs them again."))


def load_drift(screen: MainScreen) -> None:
    screen.query_one(Activity).step = "reading prod's drift …"
    screen.gateway.load_drift()


def drift_loaded(screen: MainScreen, event: DriftLoaded) -> None:
    from workbench.tui.dialogs.reading import FORK, ReadingDialog

    if not _arrived(screen, event.error, "prod's drift: not read"):
        return

    def chosen(answer: str | None) -> None:
        if answer == FORK:
            fork_with_drift(screen)

    note = ("f forks prod into a clone that carries it, to review it and promote it as a commit."
            if event.count else "")
    screen.app.push_screen(ReadingDialog("Prod's drift", "\n".join(event.lines), note=note,
                                         offers_fork=bool(event.count)), chosen)


def fork_with_drift(screen: MainScreen) -> None:
    from workbench.tui.dialogs.fork import ForkDialog

    def forked(request: ForkRequest | None) -> None:
        if request is not None:
            screen.run_operation("fork", request.name, CloneForked,
                                 call("fork", source=PROD, name=request.name, with_drift=True))

    taken = {e.name for e in screen.envs.values() if e.kind == "clone"}
    screen.app.push_screen(ForkDialog([PROD], taken), forked)


def write_report(screen: MainScreen) -> None:
    info = screen.envs.get(screen.selected or "")
    env = info.name if info is not None and info.kind == "clone" else None
    screen.query_one(Activity).step = "writing the post-mortem …"
    screen.gateway.write_report(env)


def report_written(screen: MainScreen, event: ReportWritten) -> None:
    from workbench.tui.dialogs.reading import ReadingDialog

    if not _arrived(screen, event.error, "post-mortem: not written"):
        return
    screen.app.push_screen(ReadingDialog("Post-mortem", event.text, markdown=True, note=f"Written to {event.path}"))


def _arrived(screen: MainScreen, error: str | None, title: str) -> bool:
    """A view's text has come: the activity line is cleared; False (and said) when it failed."""
    if not screen.busy:
        screen.query_one(Activity).step = None
    if error:
        screen.notify(error, title=title, severity="error", timeout=10)
    return not error
