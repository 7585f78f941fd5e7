"""The one screen: environments on the left, the live diff on the right, the journal below.

State lives in reactives (the selected environment, the operation under way, what the
diff compares); layout lives in ``styles/app.tcss``. The screen never calls the engine:
its gateway (``workbench.tui.gateway``, plain Python) owns the poller, the live diff and
the operations' threads, and posts what they find as events named in the past tense
(``workbench.tui.messages``); the screen handles each in its own thread and never waits.

Longer than most modules (about 700 lines), on purpose: it holds one handler per key of
the keymap and one per event of the gateway; the words live in ``presentation`` and the
messages' summaries, the threads in the gateway.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, OptionList, Static

from workbench.names import PROD
from workbench.owners import undo_refusal
from workbench.tui import incident, others
from workbench.tui.availability import Situation, refusal
from workbench.tui.gateway import Gateway, Post, Request, call
from workbench.tui.incident_text import drift_note
from workbench.tui.keymap import KEYS, actions_for_key, key_display
from workbench.tui.messages import (
    CloneDestroyed,
    CloneForked,
    ClonePromoted,
    CloneReset,
    DiffComputed,
    DiffFailed,
    DriftCounted,
    DriftLoaded,
    Event,
    OperationDone,
    OperationFailed,
    PreviewLoaded,
    ReportWritten,
    ResetUndone,
    ServicesRestarted,
    ServicesStarted,
    ServicesStopped,
    SnapshotTaken,
    StepReported,
    ViewsBuilt,
    WorkspaceRead,
    WorkspaceUnreadable,
)
from workbench.tui.presentation import build_views, env_line, first_line, forking_line, title_text, worktree_text
from workbench.tui.settings import ScreenSettings
from workbench.tui.widgets.activity import Activity
from workbench.tui.widgets.checks import ChecksList
from workbench.tui.widgets.diff_view import DiffView
from workbench.tui.widgets.environments import EnvList, SnapshotList

if TYPE_CHECKING:
    from workbench.model import EnvInfo, JournalEntry
    from workbench.tui.dialogs.confirm import Confirmed
    from workbench.tui.dialogs.fork import ForkRequest
    from workbench.tui.dialogs.promote import PromoteRequest
    from workbench.tui.presentation import DiffViews

# Dialogs are imported when first opened: the first frame does not wait for them.

BIG_REPORT = 20_000
"""Above this many changes, the diff pane's views are built off the screen's thread."""
SMALLEST = (74, 20)
"""The smallest terminal (columns, rows) the screen is laid out for; below it, a notice says so."""


class Posted(Message):
    """One event of the gateway, carried into the screen's own thread."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, Posted) and self.event.can_replace(message.event)


class MainScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(k.key, k.action, k.description, show=k.footer, tooltip=k.help, id=k.id) for k in KEYS
    ]

    selected: reactive[str | None] = reactive(None, bindings=True)
    busy: reactive[str | None] = reactive(None, bindings=True)
    compare_to: reactive[str] = reactive(PROD)
    show_intended: reactive[bool] = reactive(False)
    needle: reactive[str] = reactive("")

    def __init__(self, settings: ScreenSettings, gateway: Callable[[Post], Gateway]) -> None:
        super().__init__()
        self.wb = settings
        self._make_gateway = gateway
        self.envs: dict[str, EnvInfo] = {}
        self._journal: list[JournalEntry] = []
        self.report: Any = None
        self.generation = 0
        self.diff_pending = False
        self._busy_env: str | None = None
        self._select_next: str | None = None
        self._diff_timer: Timer | None = None
        self._filter_timer: Timer | None = None
        self._reported_pending: set[int] = set()
        self._last_diff_error: str | None = None
        self._diff_error: tuple[int, str, str, float] | None = None   # (generation, env, message, when), unsettled
        self._known: set[int] | None = None     # journal entries seen (others' news is told once)
        self._gateway: Gateway | None = None
        self.check_results: list[Any] = []      # the latest result of each check on each environment
        self.drift_count = 0                    # how much prod drifted (the poller looks every few seconds)

    @property
    def gateway(self) -> Gateway:
        if self._gateway is None:
            self._gateway = self._make_gateway(self._post)
        return self._gateway

    # layout ---------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static("", id="title")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield EnvList(id="envs")
                yield SnapshotList(id="snapshots")
                yield ChecksList(id="checks")
            yield DiffView(id="diff")
        yield Activity(id="activity")
        yield Footer(show_command_palette=False)
        yield Static("", id="too-small")

    def on_mount(self) -> None:
        self.query_one("#envs").border_title = "Environments"
        self.query_one("#snapshots").border_title = "Snapshots"
        self.query_one("#diff").border_title = "Diff"
        self.query_one("#activity").border_title = "Activity"
        self.query_one("#checks").border_title = "Checks"
        self.set_class(not self.wb.checks, "-no-checks")
        self.query_one(DiffView).clear("reading the workspace …")
        self._update_title()
        self.query_one("#envs").focus()
        self.call_after_refresh(self.gateway.start_polling)  # the first frame first, then the first read
        self.set_interval(5.0, self._refresh_ages)

    def _refresh_ages(self) -> None:
        """Ages ("2m", "3s ago") move on even when nothing else does."""
        self._show_envs()
        self._show_snapshots()
        self.query_one(Activity).show_journal(self._journal, self.wb.clock(), self.wb.user)

    def on_unmount(self) -> None:
        self.stop_workers()

    def stop_workers(self) -> None:
        """Tell the gateway's long-running threads to end."""
        if self._gateway is not None:
            self._gateway.stop()

    def _post(self, event: Event) -> None:
        """Called from the gateway's threads (post_message is safe there)."""
        self.post_message(Posted(event))

    # the gateway's events ---------------------------------------------------------------
    def on_posted(self, message: Posted) -> None:
        match message.event:
            case WorkspaceRead() as e:
                self._workspace_read(e)
            case WorkspaceUnreadable() as e:
                self.notify(e.error, title="cannot read the workspace", severity="warning", timeout=10)
            case DiffComputed() as e:
                self._diff_computed(e)
            case DiffFailed() as e:
                self._diff_failed(e)
            case ViewsBuilt() as e:
                self._views_built(e)
            case StepReported() as e:
                if self.busy:
                    self.query_one(Activity).step = f"{e.op} {e.env}: {e.step}"
            case OperationDone() as e:
                self._operation_done(e)
            case OperationFailed() as e:
                self._operation_over()
                self.notify(e.error, title=f"{e.op} {e.env}: not done", severity=e.severity, timeout=10)
            case PreviewLoaded() as e:
                self._preview_loaded(e)
            case DriftCounted() as e:
                self.drift_count = e.count
                self._show_envs()
            case DriftLoaded() as e:
                incident.drift_loaded(self, e)
            case ReportWritten() as e:
                incident.report_written(self, e)

    # reading the workspace -------------------------------------------------------------
    def _workspace_read(self, message: WorkspaceRead) -> None:
        self._tell_news(message.journal)
        self.envs = {e.name: e for e in message.envs}
        now = self.wb.clock()
        env_list = self.query_one(EnvList)
        self._show_envs()
        if self._select_next and self._select_next in self.envs:
            env_list.select_name(self._select_next)
            self._select_next = None
        if self.selected not in self.envs:
            self.selected = env_list.selected_name
        self._show_snapshots()
        self._journal = message.journal
        self.query_one(Activity).show_journal(message.journal, now, self.wb.user)
        self.check_results = message.checks
        incident.show_checks(self)
        for found in message.recovered:   # recovered by this screen's poller, at once
            if found.done:
                self._reported_pending.add(found.entry.id)
            self.notify(found.sentence() + " (recovered by this screen).", severity="warning", timeout=10)
        for entry in message.pending:
            if entry.id not in self._reported_pending:
                self._reported_pending.add(entry.id)
                self.notify(f"{entry.op} of {entry.env} was cut off; the next change recovers it "
                            "(or: repro-tui recover).", severity="warning", timeout=10)
        self._update_title()
        self.refresh_bindings()

    def _tell_news(self, journal: list[JournalEntry]) -> None:
        """What someone else did to the environment on screen, as a notice (told once)."""
        if self._known is None:   # the first read: what happened before the screen opened is history
            self._known = {e.id for e in journal}
            return
        for entry in others.news(journal, self._known, self.wb.user, self.selected):
            self.notify(others.what_they_did(entry) + ".", title=f"{entry.env}: changed by someone else", timeout=8)
        self._known.update(e.id for e in journal if e.outcome != "running")

    def _show_envs(self) -> None:
        """The list, with the operation under way marked on its environment (a clone being
        forked is listed as soon as its fork starts)."""
        now = self.wb.clock()
        op = self.busy.split(" ", 1)[0] if self.busy else None
        lines = [env_line(e, now, busy=op if e.name == self._busy_env else None, mask=self.wb.mask,
                          note=drift_note(self.drift_count) if e.kind == "prod" else "")
                 for e in self.envs.values()]
        if op == "fork" and self._busy_env and self._busy_env not in self.envs:
            lines.append(forking_line(self._busy_env))
        self.query_one(EnvList).show(lines)

    def watch_busy(self) -> None:
        if self.is_mounted:
            self._show_envs()

    def _show_snapshots(self) -> None:
        env = self.envs.get(self.selected or "")
        snapshots = self.query_one(SnapshotList)
        if env is None or env.kind == "prod":
            snapshots.show([], self.wb.clock(), None, "prod has no snapshots; select a clone")
        else:
            snapshots.show(list(env.snapshots), self.wb.clock(), env.last_reset, "no snapshot yet: s takes one")

    @on(OptionList.OptionHighlighted, "#envs")
    def _env_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        # the list as it is now, not the event's option: a highlight posted before the list
        # was rebuilt (a destroyed clone's) arrives after it, and would select what is gone
        name = self.query_one(EnvList).selected_name
        if name is not None and name != self.selected:
            self.selected = name

    def watch_selected(self, old: str | None, new: str | None) -> None:
        self.compare_to = PROD
        self._show_snapshots()
        self._update_title()
        incident.show_checks(self)
        self._schedule_diff()

    @on(OptionList.OptionSelected, "#envs")
    def _env_chosen(self) -> None:
        """Enter on an environment: the keyboard goes into its diff."""
        if self.diff_pair() is not None:
            self.query_one(DiffView).focus_changes()

    # the diff -------------------------------------------------------------------------
    def diff_pair(self) -> tuple[str, str] | None:
        """(left, right) for the selected clone: prod (or one of its snapshots) and the clone."""
        env = self.envs.get(self.selected or "")
        if env is None or env.kind != "clone":
            return None
        return self.compare_to, env.name

    def _schedule_diff(self, delay: float = 0.1) -> None:
        """Start the diff a moment after the selection settles (scrolling the list starts none)."""
        if self._diff_timer is not None:
            self._diff_timer.stop()
        self._diff_timer = self.set_timer(max(delay, 0.01), self.restart_diff)  # a 0 s timer divides by 0

    def restart_diff(self) -> None:
        self.gateway.stop_diff()
        self.generation += 1
        self._update_title()
        pair = self.diff_pair()
        diff = self.query_one(DiffView)
        if pair is None:
            self.report = None
            self.diff_pending = False
            has_clones = any(e.kind == "clone" for e in self.envs.values())
            hint = ("↑↓ selects a clone to compare with prod" if has_clones
                    else f"no clone yet: {self.key_for('fork')} forks prod into one")
            diff.clear(f"prod · {hint}" if self.envs else "reading the workspace …")
            return
        self.diff_pending = True
        diff.set_status(f"{pair[0]} ↔ {pair[1]} · computing the diff …  (esc stops it)")
        self.gateway.watch(pair[0], pair[1], self.generation)

    def _diff_computed(self, message: DiffComputed) -> None:
        if message.generation != self.generation:
            return
        self.report = message.report
        self.diff_pending = False
        self._last_diff_error = None
        self._show_report()

    def _diff_failed(self, message: DiffFailed) -> None:
        """A failed diff is told once it is clear it is a fault: not when an operation on its clone
        (someone's reset, a destroy) swapped or removed its files under it. That is settled a
        moment later, once the workspace has been read again."""
        if message.generation != self.generation:
            return
        self.diff_pending = False
        self.query_one(DiffView).set_status(f"{message.left} ↔ {message.right} · ✖ {first_line(message.message)}")
        if message.message != self._last_diff_error:  # a watch retries: say it once, not every poll
            self._last_diff_error = message.message
            self._diff_error = (message.generation, message.right, message.message, self.wb.clock())
            self.gateway.kick()
            self.set_timer(others.SETTLE_SECONDS, self._settle_diff_error)

    def _settle_diff_error(self) -> None:
        if self._diff_error is None:
            return
        generation, env, text, when = self._diff_error
        self._diff_error = None
        if generation != self.generation or env not in self.envs:   # moved on, or the clone is gone (told as news)
            return
        cause = others.explains_failure(self._journal, env, when)
        if cause is not None:
            self.query_one(DiffView).set_status(others.while_busy(cause, self.wb.user, self.wb.clock()))
            return
        self.notify(text, title="diff failed", severity="error", timeout=8)

    def _show_report(self) -> None:
        if self.report is None:
            return
        report, show_intended, needle = self.report, self.show_intended, self.needle
        size = len(report.config) + len(report.services) + len(report.data)
        if size > BIG_REPORT:
            self.query_one(DiffView).set_status(f"{report.left} ↔ {report.right} · arranging {size:,} changes …")
            self.gateway.build_views(lambda: build_views(report, show_intended, needle), self.generation)
        else:
            self._apply_views(build_views(report, show_intended, needle))

    def _views_built(self, message: ViewsBuilt) -> None:
        views = message.views
        if views.report is self.report and views.show_intended == self.show_intended and views.needle == self.needle:
            self._apply_views(views)

    def _apply_views(self, views: DiffViews) -> None:
        diff = self.query_one(DiffView)
        diff.show(views)
        report = views.report
        hidden = sum(views.counts[s][1] for s in views.counts)
        unexpected = sum(views.counts[s][0] + views.counts[s][2] for s in views.counts)
        parts = [f"{report.left} ↔ {report.right}", f"{unexpected:,} unexpected" if unexpected else "✓ clean"]
        if hidden:
            shown = "shown" if views.show_intended else "hidden"
            parts.append(f"{hidden} intended {shown} ({self.key_for('intended')})")
        if views.needle:
            parts.append(f"filter “{views.needle}”")
        diff.set_status(" · ".join(parts))

    def watch_show_intended(self) -> None:
        self._show_report()

    def watch_needle(self) -> None:
        self._show_report()

    def _update_title(self) -> None:
        """The first line names the target of every key, its worktree, and a needed restart."""
        env = self.envs.get(self.selected or "")
        where = ""
        if env is not None and self.wb.root is not None:
            where = worktree_text(env.worktree, self.wb.root, self.wb.cwd, Path.home(), self.wb.mask)
        text = title_text(self.wb.workspace_name, env, where, self.key_for("restart"))
        self.query_one("#title", Static).update(Content(text))

    def on_resize(self, event: events.Resize) -> None:
        """Below the smallest size the screen is laid out for, a notice instead of a cut screen."""
        cols, rows = event.size
        small = cols < SMALLEST[0] or rows < SMALLEST[1]
        self.set_class(small, "-too-small")
        if small:
            self.query_one("#too-small", Static).update(Content(
                f"The terminal is {cols}×{rows}: repro-tui needs at least {SMALLEST[0]}×{SMALLEST[1]}.\n\n"
                "Make the window larger (or the font smaller).\nq quits."))

    # keys -----------------------------------------------------------------------------
    def situation(self) -> Situation:
        env = self.envs.get(self.selected or "")
        theirs = undo_refusal(env.name, env.last_reset_by, env.last_reset_at, self.wb.clock(), self.wb.user) \
            if env is not None and env.kind == "clone" else None
        return Situation(
            selected=self.selected, kind=env.kind if env else None, state=env.state if env else None,
            busy=self.busy, can_undo_reset=bool(env and env.can_undo_reset),
            has_services=bool(env and env.services) if env else bool(self.wb.has_services),
            backend=self.wb.backend_name, undo_refusal=theirs.message if theirs else None,
            has_checks=bool(self.wb.checks))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return refusal(action, self.situation()) is None

    def on_key(self, event: events.Key) -> None:
        """A key none of whose actions can apply now says why, instead of doing nothing."""
        actions = actions_for_key(event.key, self.wb.keymap)
        situation = self.situation()
        reasons = [refusal(action, situation) for action in actions]
        if reasons and all(reasons):
            event.stop()
            self.notify(str(reasons[0]), severity="warning", timeout=6)

    def key_for(self, binding_id: str) -> str:
        keys = self.wb.keymap.get(binding_id) or next(k.key for k in KEYS if k.id == binding_id)
        return key_display(keys.split(",")[0])

    # operations -----------------------------------------------------------------------
    def run_operation(self, op: str, env: str, done: type[OperationDone], request: Request) -> None:
        """Run one change of the workspace through the gateway; the screen stays responsive."""
        self._busy_env = env
        self.busy = f"{op} {env}"
        self.query_one(Activity).step = f"{op} {env} …"
        self.gateway.run(op, env, done, request)

    def _operation_over(self) -> None:
        self.busy = None
        self._busy_env = None
        self.query_one(Activity).step = None
        self.gateway.kick()

    def _operation_done(self, message: OperationDone) -> None:
        self._operation_over()
        self.notify(message.summary(self.key_for("undo-reset")), title=f"{message.op} {message.env}: done",
                    timeout=8)
        if isinstance(message, CloneForked):
            self._select_next = message.env
        if message.env == self.selected or isinstance(message, CloneForked | CloneDestroyed):
            self._schedule_diff(0.05)

    # actions --------------------------------------------------------------------------
    def _clone(self) -> str:
        assert self.selected is not None
        return self.selected

    def action_fork(self) -> None:
        from workbench.tui.dialogs.fork import ForkDialog

        clones = [e for e in self.envs.values() if e.kind == "clone"]
        sources = [PROD] + [e.name for e in clones] + [f"{e.name}@{s.name}" for e in clones for s in e.snapshots]

        def forked(request: ForkRequest | None) -> None:
            if request is not None:
                self.run_operation("fork", request.name, CloneForked,
                                   call("fork", source=request.source, name=request.name))

        self.app.push_screen(ForkDialog(sources, {e.name for e in clones}), forked)

    def action_snapshot(self) -> None:
        from workbench.tui.dialogs.snapshots import SnapshotNameDialog

        env = self._clone()
        taken = {s.name for s in self.envs[env].snapshots}

        def named(name: str | None) -> None:
            if name is not None:
                self.run_operation("snapshot", env, SnapshotTaken, call("snapshot", env=env, name=name))

        self.app.push_screen(SnapshotNameDialog(env, taken), named)

    def action_reset(self) -> None:
        env = self._clone()
        self.run_operation("reset", env, CloneReset, call("reset", env=env))

    def action_undo_reset(self) -> None:
        env = self._clone()
        self.run_operation("undo-reset", env, ResetUndone, call("undo_reset", env=env))

    def action_choose_snapshot(self) -> None:
        from workbench.tui.dialogs.snapshots import ChooseDialog

        env = self._clone()
        info = self.envs[env]
        choices = [(s.name, s.name + ("  ◂ last reset" if s.name == info.last_reset else ""))
                   for s in reversed(info.snapshots)]

        def chosen(snapshot: str | None) -> None:
            if snapshot is not None:
                self.run_operation("reset", env, CloneReset, call("reset", env=env, snapshot=snapshot))

        self.app.push_screen(ChooseDialog(f"Reset {env} to …", "Its data goes back to the snapshot at once "
                                          f"({self.key_for('undo-reset')} undoes it).", choices), chosen)

    def action_promote(self) -> None:
        env = self._clone()
        self.query_one(Activity).step = f"promote {env}: reading what would be committed …"
        self.gateway.load_preview(env)

    def _preview_loaded(self, message: PreviewLoaded) -> None:
        from workbench.tui.dialogs.promote import PromoteDialog

        if not self.busy:
            self.query_one(Activity).step = None
        if message.error:
            self.notify(message.error, title=f"promote {message.env}: not done", severity="error", timeout=10)
            return
        env = message.env
        info = self.envs.get(env)
        branch = info.branch if info else f"repro/{env}"

        def promoted(request: PromoteRequest | None) -> None:
            if request is not None:
                self.run_operation("promote", env, ClonePromoted,
                                   call("promote", env=env, message=request.message, merge=request.merge))

        self.app.push_screen(PromoteDialog(env, branch, self.wb.prod_branch, message.files, message.diff_text),
                             promoted)

    def action_destroy(self) -> None:
        from workbench.tui.dialogs.confirm import TypedConfirmDialog

        env = self._clone()

        def confirmed(answer: Confirmed | None) -> None:
            if answer is not None:
                self.run_operation("destroy", env, CloneDestroyed, call("destroy", env=env, force=answer.option))

        self.app.push_screen(TypedConfirmDialog(
            f"Destroy {env}",
            f"This stops {env}'s services and removes its worktree, data and snapshots. "
            "Its branch is kept if it has commits prod's branch lacks.",
            expected=env, button="Destroy", option="also lose uncommitted changes in its worktree (--force)"),
            confirmed)

    def action_start_stop(self) -> None:
        env = self.selected or PROD
        info = self.envs.get(env)
        if info is not None and info.state in ("running", "partial"):
            self.run_operation("stop", env, ServicesStopped, call("stop", env=env))
        else:
            self.run_operation("start", env, ServicesStarted, call("start", env=env))

    def action_start_stop_prod(self) -> None:
        """prod's services, after a typed confirmation naming prod."""
        info = self.envs.get(PROD)
        stop = info is not None and info.state in ("running", "partial")
        what = "stop" if stop else "start"
        self._confirm_prod(what, f"This {what}s the services of prod, the environment every clone is forked from"
                           + (": whatever uses them now stops getting answers." if stop else "."),
                           self.action_start_stop)

    def action_restart(self) -> None:
        env = self.selected or PROD

        def restart() -> None:
            self.run_operation("restart", env, ServicesRestarted, call("restart", env=env))

        if env == PROD:
            self._confirm_prod("restart", "This stops and starts the services of prod, the environment every clone "
                               "is forked from: for a moment they answer nothing.", restart)
        else:
            restart()

    def _confirm_prod(self, what: str, explanation: str, then: Callable[[], None]) -> None:
        from workbench.tui.dialogs.confirm import TypedConfirmDialog

        def confirmed(answer: Confirmed | None) -> None:
            if answer is not None:
                then()

        self.app.push_screen(TypedConfirmDialog(f"{what.capitalize()} prod's services", explanation, expected=PROD,
                                                button=what.capitalize()), confirmed)

    def action_detail(self) -> None:
        """Enter: from the environments into the diff; on a change, the change in full."""
        from workbench.tui.details import detail_of
        from workbench.tui.dialogs.detail import DetailDialog

        diff = self.query_one(DiffView)
        pair = self.diff_pair()
        current = diff.current_change() if pair is not None else None
        if pair is None or current is None or self.report is None:
            return
        _section, change = current
        self.app.push_screen(DetailDialog(pair[1], pair[0], detail_of(change, pair[0], pair[1], self.report)))

    def action_logs(self) -> None:
        from workbench.tui.dialogs.logs import LogsDialog

        env = self.selected or PROD
        info = self.envs.get(env)
        services = list(info.services) if info else []
        if not services:
            self.notify("this environment has no service, so there are no logs.", severity="warning")
            return
        self.app.push_screen(LogsDialog(env, services, self.gateway.log_reader(env)))

    def action_mail(self) -> None:
        from workbench.tui.dialogs.mail import MailDialog

        env = self.selected or PROD
        listing, message = self.gateway.mail_reader(env)
        self.app.push_screen(MailDialog(env, listing, message))

    def action_compare(self) -> None:
        from workbench.tui.dialogs.snapshots import ChooseDialog

        env = self._clone()
        choices = [(PROD, "prod  (the default)")] + [(f"{env}@{s.name}", f"{env}@{s.name}  (its snapshot)")
                                                     for s in reversed(self.envs[env].snapshots)]

        def chosen(ref: str | None) -> None:
            if ref is not None and ref != self.compare_to:
                self.compare_to = ref
                self._schedule_diff(0.0)

        self.app.push_screen(ChooseDialog(f"Compare {env} with …", "prod, or one of its snapshots "
                                          "(what did my steps change since then?)", choices, self.compare_to),
                             chosen)

    def action_filter(self) -> None:
        diff = self.query_one(DiffView)
        diff.add_class("-filtering")
        field = diff.query_one("#filter", Input)
        field.value = self.needle
        field.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
        value = event.value.strip()
        self._filter_timer = self.set_timer(0.2, lambda: setattr(self, "needle", value))

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.needle = event.value.strip()
        diff = self.query_one(DiffView)
        if not self.needle:
            diff.remove_class("-filtering")
        diff.show_tab(diff.active_tab, focus=True)   # enter: the keyboard to the filtered changes

    def action_toggle_intended(self) -> None:
        self.show_intended = not self.show_intended

    def action_show_tab(self, section: str) -> None:
        """The keyboard stays where it is: on the environments, or in the diff (then in the new tab)."""
        diff = self.query_one(DiffView)
        diff.show_tab(section, focus=diff.has_focus_within)

    def action_check(self) -> None:
        incident.run_checks(self)

    def action_check_details(self) -> None:
        incident.show_check_details(self)

    @on(OptionList.OptionSelected, "#checks")
    def _check_chosen(self) -> None:
        incident.show_check_details(self)

    def action_drift(self) -> None:
        incident.load_drift(self)

    def action_report(self) -> None:
        incident.write_report(self)

    def action_help(self) -> None:
        from workbench.tui.dialogs.help import HelpDialog

        self.app.push_screen(HelpDialog(self.wb.keymap, self.wb.keymap_file))

    def action_cancel(self) -> None:
        diff = self.query_one(DiffView)
        if diff.has_class("-filtering"):
            diff.remove_class("-filtering")
            self.needle = ""
            self.query_one(EnvList).focus()
            return
        if diff.has_focus_within:   # back to the environments: ↑↓ choose the target again
            self.query_one(EnvList).focus()
            return
        if self.diff_pending and self.gateway.stop_diff():
            self.diff_pending = False
            pair = self.diff_pair()
            diff.set_status(f"{pair[0]} ↔ {pair[1]} · diff stopped; select the clone again to restart it"
                            if pair else "diff stopped")
            return
        if self.busy:
            self.notify(f"{self.busy} cannot be stopped half way: the engine finishes it or rolls it back.",
                        severity="warning")

    def action_quit(self) -> None:
        self.stop_workers()
        self.app.exit(0)
