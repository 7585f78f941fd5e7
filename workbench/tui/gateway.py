"""The screen's gateway to the engine: plain Python, no Textual.

It owns every thread the screen needs and posts what they find as the events of
``workbench.tui.messages``; the screen never calls the engine itself.

* the *poller* reads the environments and the journal every ``poll_interval`` seconds,
  and at once when kicked (after an operation); it has its own read-only workspace;
* the *live diff* runs the engine's watch on one pair; starting another stops it;
* *operations* (fork, reset, ...) run one at a time, each in a process of its own
  (``workbench.detached``) that a thread follows: a hang-up, a dropped SSH connection or a
  killed screen never stops one half way, and the screen never stops one either;
* small one-off readers: the promote preview, the views of a very large report.

Every text it posts passes the workspace's redactor.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from workbench.detached import Detached, Request
from workbench.errors import ReproError
from workbench.formats import printable
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
    from workbench.model import EnvInfo, JournalEntry
    from workbench.redact import Redactor
    from workbench.spec import Spec

Progress = Callable[[str], None]
Post = Callable[[Event], None]

__all__ = ["Engine", "Gateway", "Post", "Request", "call", "error_text"]


class Engine(Protocol):
    """What the screen asks of a workspace (``workbench.workspace.Workspace`` is one)."""

    root: Path
    repro_dir: Path
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
    def latest_checks(self) -> list[CheckResult]: ...
    def drift(self) -> Drift: ...
    def save_postmortem(self, envs: list[str] | None = None) -> tuple[Path, str]: ...


def call(method: str, **kwargs: Any) -> Request:
    """An operation for ``Gateway.run``: a method of the workspace (``reset``) and its arguments."""
    return Request(method, kwargs)


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
        """``text`` as the screen may show it: secrets masked, control characters escaped."""
        return printable(self.ws.redactor.text(text, env))

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
                    recovered = reader.try_recover()   # a cut-off operation is recovered at once; never waits
                    envs = reader.list_envs()
                    journal = reader.journal(limit=10)
                    pending = reader.pending()
                    checks = reader.latest_checks()
                    seen = ([e.as_dict() for e in envs], [j.as_dict() for j in journal], [p.id for p in pending],
                            [c.as_dict() for c in checks])
                    said = None
                    if seen != last or recovered:
                        last = seen
                        self.post(WorkspaceRead(envs, journal, pending, recovered, checks=checks))
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
    def run(self, op: str, env: str, done: type[OperationDone], request: Request) -> None:
        """Run one change of the workspace in a process of its own, followed by a thread;
        ``done`` names the event on success."""
        self._thread(self._run, op, env, done, request, name=f"op-{op}")

    def _run(self, op: str, env: str, done: type[OperationDone], request: Request) -> None:
        started = time.perf_counter()

        def progress(step: str) -> None:
            self.post(StepReported(op, env, self.redact(step, env)))

        try:
            outcome = Detached.start(self.ws.repro_dir, request).wait(progress)
        except Exception as exc:   # it could not even start (a full disk, a removed workspace)
            self.post(OperationFailed(op, env, self.redact(error_text(exc), env)))
            return
        finally:
            self.kick()            # the workspace changed (or a cut-off one waits to be recovered)
        if outcome.error is not None:
            code = outcome.error.code
            self.post(OperationFailed(op, env, self.redact(str(outcome.error), env),
                                      "warning" if code == 2 else "error"))
            return
        self.post(done(op, env, outcome.result, time.perf_counter() - started))

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
            return [printable(line, drop_ansi=True)
                    for line in holder["ws"].logs(env, service, follow=False, lines=200)]

        return read
