"""Operations run in a process of their own, so that they outlive the terminal that asked.

The screen runs every operation that changes the workspace this way. ``Detached.start``
starts ``python -m workbench.detached REQUEST`` detached from the terminal (``setsid``), its standard streams on
a log file and never on the terminal: a hang-up, a dropped SSH connection or a killed screen
leaves it running to its end. It runs the operation through the workspace like any other
writer (journaled, under the writer lock) and writes what happens beside its request:

    .repro/ops/ID.json      the request: {"root": ..., "method": "reset", "kwargs": {"env": "b1"}}
    .repro/ops/ID.steps     the operation's steps, one JSON string a line, as it reports them
    .repro/ops/ID.result    written last, whole: {"result": ...} or {"error": {...}}
    .repro/ops/ID.log       the process's own output (empty unless it crashed)

The process that started it follows these files (``Detached.wait``) and removes them once
it has read the result. The journal stays the truth: an operation whose process is killed
half way is recovered like any other, by the next repro-tui process that notices it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.check_results import CheckResult
from workbench.errors import ReproError
from workbench.model import EnvInfo, PromoteResult, SnapshotInfo

METHODS = frozenset({"fork", "snapshot", "reset", "undo_reset", "promote", "destroy", "start", "stop", "restart",
                     "check"})
"""The workspace's methods that may run detached: the operations that change it."""
OPS_DIR = "ops"
KEEP_SECONDS = 86400   # files of a run whose starter never came back for them


@dataclass(frozen=True)
class Request:
    """One operation to run: a method of the workspace and its arguments (names and flags)."""

    method: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """How it ended: the operation's result, or its error (message, hint, exit code)."""

    result: Any = None
    error: ReproError | None = None


class Detached:
    """One operation running in its own process; ``wait`` follows it to its end."""

    def __init__(self, files: Path, proc: subprocess.Popen) -> None:
        self.files = files   # the request file; the others are beside it
        self.proc = proc

    @classmethod
    def start(cls, repro_dir: Path, request: Request) -> Detached:
        if request.method not in METHODS:
            raise ValueError(f"{request.method!r} is not an operation")
        folder = repro_dir / OPS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        _forget_old(folder)
        files = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.json"
        files.write_text(json.dumps({"root": str(repro_dir.parent), "method": request.method,
                                     "kwargs": request.kwargs}))
        here = str(Path(__file__).resolve().parent.parent)   # the child runs this very code
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)}
        # Until the child has its own session it is in the terminal's process group: a hang-up
        # then would kill it before it begins. It is started with SIGHUP blocked (this thread's
        # mask, which it inherits); it sheds what came meanwhile once it runs (_shed_hang_ups).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        try:
            with open(files.with_suffix(".log"), "ab") as log:
                proc = subprocess.Popen([sys.executable, "-m", "workbench.detached", str(files)],
                                        cwd=repro_dir.parent, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, env=env, start_new_session=True)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        return cls(files, proc)

    def wait(self, on_step: Callable[[str], None], poll: float = 0.05) -> Outcome:
        """Report each step as it comes; return once the operation has ended."""
        steps, result = self.files.with_suffix(".steps"), self.files.with_suffix(".result")
        offset = 0
        while True:
            ended = self.proc.poll() is not None
            offset = _read_steps(steps, offset, on_step)
            if result.exists():
                self.proc.wait()
                outcome = _outcome(json.loads(result.read_text()))
                break
            if ended:
                outcome = Outcome(error=ReproError(
                    f"the operation's process ended without finishing (exit code {self.proc.returncode}).",
                    "The journal says what became of it (repro-tui log); anything it left half made is "
                    "recovered by the next command."))
                break
            time.sleep(poll)
        for suffix in (".json", ".steps", ".result", ".log"):
            self.files.with_suffix(suffix).unlink(missing_ok=True)
        return outcome


def _read_steps(path: Path, offset: int, on_step: Callable[[str], None]) -> int:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return offset
    complete = data[: data.rfind(b"\n") + 1]
    for line in complete.splitlines():
        on_step(json.loads(line))
    return offset + len(complete)


def _forget_old(folder: Path) -> None:
    cutoff = time.time() - KEEP_SECONDS
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass


# what the result file holds: the engine's results as JSON, and back --------------------------

def encode(value: Any) -> dict[str, Any]:
    if isinstance(value, list) and value and all(isinstance(v, CheckResult) for v in value):
        return {"checks": [v.as_dict() for v in value]}
    if isinstance(value, EnvInfo):
        return {"env": value.as_dict()}
    if isinstance(value, SnapshotInfo):
        return {"snapshot": value.as_dict()}
    if isinstance(value, PromoteResult):
        return {"promoted": value.as_dict()}
    return {"value": value}   # None, or notes for the user


def decode(doc: dict[str, Any]) -> Any:
    if "env" in doc:
        data = dict(doc["env"])
        data["worktree"] = Path(data["worktree"])
        data["snapshots"] = [SnapshotInfo(**s) for s in data["snapshots"]]
        return EnvInfo(**data)
    if "snapshot" in doc:
        return SnapshotInfo(**doc["snapshot"])
    if "promoted" in doc:
        return PromoteResult(**doc["promoted"])
    if "checks" in doc:
        return [CheckResult(**c) for c in doc["checks"]]
    return doc.get("value")


def _outcome(doc: dict[str, Any]) -> Outcome:
    if "error" in doc:
        error = doc["error"]
        exc = ReproError(error["message"], error.get("hint"))
        exc.code = int(error.get("code", 1))
        return Outcome(error=exc)
    return Outcome(result=decode(doc["result"]))


# the child ------------------------------------------------------------------------------------

def _shed_hang_ups() -> None:
    """Drop a hang-up that reached the child before it had its own session (ignoring a pending
    signal discards it), then put SIGHUP back as it was: the services it starts get the usual."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def run(files: Path) -> int:
    """Run the request in ``files`` and write its result beside it (the child's whole life)."""
    from workbench.workspace import Workspace

    request = json.loads(files.read_text())
    steps = open(files.with_suffix(".steps"), "ab", buffering=0)  # noqa: SIM115 - open for the whole run

    def progress(text: str) -> None:
        steps.write(json.dumps(text).encode() + b"\n")

    ws = None
    try:
        ws = Workspace(Path(request["root"]))
        method = request["method"]
        if method not in METHODS:
            raise ReproError(f"{method!r} is not an operation.")
        doc: dict[str, Any] = {"result": encode(getattr(ws, method)(**request["kwargs"], progress=progress))}
    except ReproError as exc:
        doc = {"error": {"message": exc.message, "hint": exc.hint, "code": exc.code}}
    except Exception as exc:  # never a traceback for the user: one line, the journal has the rest
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        doc = {"error": {"message": f"unexpected error: {type(exc).__name__}: {first}", "code": 1}}
    finally:
        steps.close()
    if ws is not None:
        env = request["kwargs"].get("env") or request["kwargs"].get("name")
        if "error" in doc:
            doc["error"] = {k: ws.redactor.text(v, env) if isinstance(v, str) else v for k, v in doc["error"].items()}
        ws.close()
    tmp = files.with_suffix(".result-tmp")
    tmp.write_text(json.dumps(doc, default=str))
    os.replace(tmp, files.with_suffix(".result"))
    return 0


if __name__ == "__main__":
    _shed_hang_ups()
    raise SystemExit(run(Path(sys.argv[1])))
