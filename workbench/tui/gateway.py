"""The screen's gateway to the engine: plain Python, no Textual.

It owns every thread the screen needs and posts what they find as the events of
``workbench.tui.messages``; the screen never calls the engine itself.

* the *poller* reads the environments and the journal every ``poll_interval`` seconds,
  and at once when kicked (after an operation); it has its own read-only workspace;
* the *live diff* runs the engine's watch on one pair; starting another stops it;
* *operations* (fork, reset, ...) run one at a time in their own thread, never stopped
  by the screen: a half-run operation is the engine's to finish or roll back;
* small one-off readers: the promote preview, the views of a very large report.

Every text it posts passes the workspace's redactor.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from workbench.errors import ReproError
from workbench.tui.messages import (
    DiffComputed,
    DiffFailed,
    DriftCounted,
    DriftLoaded,
    Event,
    OperationDone,
    OperationFailed,
    PreviewLoaded,
    ReportWritten,
    StepReported,
    ViewsBuilt,
    WorkspaceRead,
    WorkspaceUnreadable,
)

if TYPE_CHECKING:
    import threading as _threading

    from workbench.check_results import CheckResult
    from workbench.diff.model import DiffReport
    from workbench.drift import Drift
    from workbench.journal import Recovered
    from workbench.model import EnvInfo, JournalEntry, PromoteResult, SnapshotInfo
    from workbench.redact import Redactor
    from workbench.spec import Spec

Progress = Callable[[str], None]
Post = Callable[[Event], None]


class Engine(Protocol):
    """What the screen asks of a workspace (``workbench.workspace.Workspace`` is one)."""

    root: Path
    spec: Spec
    redactor: Redactor

    def close(self) -> None: ...
    def list_envs(self) -> list[EnvInfo]: ...
    def journal(self, env: str | None = None, limit: int = 50) -> list[JournalEntry]: ...
    def pending(self) -> list[JournalEntry]: ...
    def try_recover(self) -> list[Recovered]: ...
    def watch(self, a: str, b: str, callback: Callable[[Any], None], stop_event: _threading.Event,
              **options: Any) -> None: ...
    def diff(self, a: str, b: str, **options: Any) -> DiffReport: ...
    def promote_preview(self, env: str) -> tuple[list[str], str]: ...
    def logs(self, env: str, service: str | None = None, follow: bool = False, lines: int = 200) -> Any: ...
    def mail(self, env: str) -> Any: ...
    def mail_message(self, env: str, mail_id: int) -> Any: ...
    def fork(self, source: str, name: str, progress: Progress | None = None,
             with_drift: bool = False) -> EnvInfo: ...
    def snapshot(self, env: str, name: str | None = None, progress: Progress | None = None) -> SnapshotInfo: ...
    def reset(self, env: str, snapshot: str | None = None, code: bool = False,
              progress: Progress | None = None) -> SnapshotInfo: ...
    def undo_reset(self, env: str, progress: Progress | None = None) -> None: ...
    def promote(self, env: str, message: str, merge: bool = False,
                progress: Progress | None = None) -> PromoteResult: ...
    def destroy(self, env: str, force: bool = False, progress: Progress | None = None) -> list[str]: ...
    def start(self, env: str, progress: Progress | None = None) -> EnvInfo: ...
    def stop(self, env: str, progress: Progress | None = None) -> EnvInfo: ...
    def check(self, env: str, names: list[str] | None = None, trigger: str = "cli",
              progress: Progress | None = None) -> list[CheckResult]: ...
    def latest_checks(self) -> list[CheckResult]: ...
    def drift(self) -> Drift: ...
    def save_postmortem(self, envs: list[str] | None = None) -> tuple[Path, str]: ...


Call = Callable[[Engine, Progress], Any]
"""An operation: the engine call to make, given the workspace and a progress callback."""

DRIFT_INTERVAL = 10.0
"""How often the poller looks at prod's drift (git and the engine: dearer than the list)."""


def error_text(exc: BaseException) -> str:
    """The engine's message (and hint) for a ReproError; one line, never a traceback, otherwise."""
    if isinstance(exc, ReproError):
        return str(exc)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"unexpected error: {type(exc).__name__}: {first[:200]}"


class Gateway:
    def __init__(self, ws: Engine, post: Post, *, open_reader: Callable[[], Engine] | None = None,
                 poll_interval: float = 2.0, diff_limit: int = 100_000) -> None:
        self.ws = ws
        self._post = post
        self.open_reader = open_reader or (lambda: type(ws)(ws.root))  # type: ignore[call-arg]
        self.poll_interval = poll_interval
        self.diff_limit = diff_limit
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._diff_stop: threading.Event | None = None
        self._threads: list[threading.Thread] = []

    # posting --------------------------------------------------------------------------------
    def post(self, event: Event) -> None:
        if not self._stop.is_set():
            self._post(event)

    def redact(self, text: str, env: str | None = None) -> str:
        return self.ws.redactor.text(text, env)

    def _thread(self, target: Callable[..., None], *args: Any, name: str) -> threading.Thread:
        t = threading.Thread(target=target, args=args, name=f"repro-tui-{name}", daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()
        return t

    def stop(self) -> None:
        """End the long-running threads (they check their events often)."""
        self._stop.set()
        self._kick.set()
        self.stop_diff()

    # the poller -----------------------------------------------------------------------------
    def start_polling(self) -> None:
        self._thread(self._poll, name="poll")

    def kick(self) -> None:
        """Read the workspace again now (after an operation)."""
        self._kick.set()

    def _poll(self) -> None:
        reader: Engine | None = None
        last: Any = None
        said: str | None = None
        drift_at, drift_seen = -DRIFT_INTERVAL, None
        try:
            while not self._stop.is_set():
                try:
                    if reader is None:
                        reader = self.open_reader()
                    envs = reader.list_envs()
                    journal = reader.journal(limit=10)
                    pending = reader.pending()
                    checks = reader.latest_checks()
                    seen = ([e.as_dict() for e in envs], [j.as_dict() for j in journal], [p.id for p in pending],
                            [c.as_dict() for c in checks])
                    said = None
                    if seen != last:
                        last = seen
                        self.post(WorkspaceRead(envs, journal, pending, checks=checks))
                    if time.monotonic() - drift_at >= DRIFT_INTERVAL:
                        drift_at = time.monotonic()
                        drift_seen = self._count_drift(reader, drift_seen)
                except Exception as exc:  # e.g. repro.yaml broken while being edited: say so once, keep trying
                    text = self.redact(error_text(exc))
                    if text != said:
                        said = text
                        self.post(WorkspaceUnreadable(text))
                    if reader is not None:
                        reader.close()
                        reader = None
                self._kick.wait(self.poll_interval)
                self._kick.clear()
        finally:
            if reader is not None:
                reader.close()

    def _count_drift(self, reader: Engine, seen: Any) -> Any:
        """Post how much prod drifted when it changed; a drift that cannot be read is left unsaid
        here (the drift view says why)."""
        try:
            drift = reader.drift()
        except Exception:  # noqa: BLE001 - e.g. prod's branch missing: the list is not the place for it
            return seen
        now = (drift.count, drift.summary())
        if now != seen:
            self.post(DriftCounted(*now))
        return now

    # the live diff ----------------------------------------------------------------------------
    def watch(self, left: str, right: str, generation: int) -> None:
        """Start the live diff of one pair (stopping the one before)."""
        self.stop_diff()
        stop = threading.Event()
        self._diff_stop = stop
        self._thread(self._watch, left, right, generation, stop, name="diff")

    def stop_diff(self) -> bool:
        """Stop the live diff; True when one was running."""
        stop, self._diff_stop = self._diff_stop, None
        if stop is None:
            return False
        stop.set()
        return True

    def _watch(self, left: str, right: str, generation: int, stop: threading.Event) -> None:
        reader: Engine | None = None

        def failed(exc: BaseException) -> None:   # the watch goes on: the next change may mend it
            if not stop.is_set():
                self.post(DiffFailed(left, right, self.redact(error_text(exc), right), generation))

        def deliver(report: Any) -> None:
            if not stop.is_set():
                self.post(DiffComputed(left, right, report, generation))

        try:
            reader = self.open_reader()
            reader.watch(left, right, deliver, stop, limit=self.diff_limit, on_error=failed)
        except Exception as exc:
            failed(exc)
        finally:
            if reader is not None:
                reader.close()

    def build_views(self, build: Callable[[], Any], generation: int) -> None:
        """Arrange a very large report off the screen's thread."""
        self._thread(lambda: self.post(ViewsBuilt(build(), generation)), name="views")

    # operations -------------------------------------------------------------------------------
    def run(self, op: str, env: str, done: type[OperationDone], call: Call) -> None:
        """Run one change of the workspace in a thread; ``done`` names the event on success."""
        self._thread(self._run, op, env, done, call, name=f"op-{op}")

    def _run(self, op: str, env: str, done: type[OperationDone], call: Call) -> None:
        started = time.perf_counter()

        def progress(step: str) -> None:
            self.post(StepReported(op, env, self.redact(step, env)))

        try:
            result = call(self.ws, progress)
        except ReproError as exc:
            self.post(OperationFailed(op, env, self.redact(str(exc), env), "warning" if exc.code == 2 else "error"))
            return
        except Exception as exc:
            self.post(OperationFailed(op, env, self.redact(error_text(exc), env)))
            return
        self.post(done(op, env, result, time.perf_counter() - started))

    # one-off readers ----------------------------------------------------------------------------
    def load_preview(self, env: str) -> None:
        self._thread(self._preview, env, name="preview")

    def _preview(self, env: str) -> None:
        reader = None
        try:
            reader = self.open_reader()
            files, text = reader.promote_preview(env)
            self.post(PreviewLoaded(env, files, text))
        except Exception as exc:
            self.post(PreviewLoaded(env, [], "", error=self.redact(error_text(exc), env)))
        finally:
            if reader is not None:
                reader.close()

    def load_drift(self) -> None:
        """Read prod's drift for the drift view."""
        self._thread(self._drift, name="drift")

    def _drift(self) -> None:
        reader = None
        try:
            reader = self.open_reader()
            drift = reader.drift()
            self.post(DriftLoaded([self.redact(line) for line in drift.lines()], drift.count))
        except Exception as exc:
            self.post(DriftLoaded([], error=self.redact(error_text(exc))))
        finally:
            if reader is not None:
                reader.close()

    def write_report(self, env: str | None) -> None:
        """Write the post-mortem of a clone (of every clone when ``env`` is None)."""
        self._thread(self._report, env, name="report")

    def _report(self, env: str | None) -> None:
        reader = None
        try:
            reader = self.open_reader()
            path, text = reader.save_postmortem([env] if env else None)
            shown = path.relative_to(reader.root) if path.is_relative_to(reader.root) else path
            self.post(ReportWritten(str(shown), self.redact(text)))
        except Exception as exc:
            self.post(ReportWritten("", "", error=self.redact(error_text(exc), env)))
        finally:
            if reader is not None:
                reader.close()
    def mail_reader(self, env: str) -> tuple[Callable[[], list[list[str]]], Callable[[int], str]]:
        """Two functions for the mail dialog's thread: the captured messages as rows (id, time,
        from, to, subject), and one message as text; every word through the redactor."""
        holder: dict[str, Engine] = {}

        def ws() -> Engine:
            if "ws" not in holder:
                holder["ws"] = self.open_reader()
            return holder["ws"]

        def listing() -> list[list[str]]:
            rows = [[str(m.id), time.strftime("%m-%d %H:%M:%S", time.localtime(m.time)), m.sender,
                     ", ".join(m.to), m.subject] for m in ws().mail(env)]
            return [[self.redact(cell, env) for cell in row] for row in rows]

        def message(mail_id: int) -> str:
            return self.redact(ws().mail_message(env, mail_id).text(), env)

        return listing, message

    def log_reader(self, env: str) -> Callable[[str], list[str]]:
        """A function that reads a service's last lines (called from the logs dialog's thread)."""
        holder: dict[str, Engine] = {}

        def read(service: str) -> list[str]:
            if "ws" not in holder:
                holder["ws"] = self.open_reader()
            return list(holder["ws"].logs(env, service, follow=False, lines=200))

        return read
