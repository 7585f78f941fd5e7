"""How fast the screen answers, measured on the real thing.

    .venv/bin/python bench/bench_tui.py [--runs 5] [--dir PATH]

1. process start to first frame: ``repro-tui`` started in a pseudo-terminal (80x24) on
   the demo workspace, timed until its first frame is on the terminal, and until the
   environments are listed in it (target: <= 0.5 s);
2. key press to repaint after a reset: ``r`` on a clone, timed until the screen shows
   the reset under way (first repaint) and until it says how to undo it (done);
3. resident memory with 5 clones, after visiting each clone's live diff (target 150 MB),
   and the CPU the screen uses while nobody types (its poller and the live diff);
4. first paint of the row table with 1,000,000 changed rows (target: <= 100 ms), beside
   the cost of Textual's DataTable for the same rows (extrapolated from 20,000).

Nothing is mocked: the demo is built with ``build_demo``, clones are forked by the engine
and the screen is the installed ``repro-tui`` reading a real terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import statistics
import struct
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for var, value in (("GIT_AUTHOR_NAME", "bench"), ("GIT_AUTHOR_EMAIL", "bench@example.invalid"),
                   ("GIT_COMMITTER_NAME", "bench"), ("GIT_COMMITTER_EMAIL", "bench@example.invalid")):
    os.environ.setdefault(var, value)

ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]|\x1b\][^\x07]*\x07")
REPRO_TUI = Path(sys.executable).parent / "repro-tui"


class Terminal:
    """``repro-tui`` in a pseudo-terminal: what it writes, with a clock on every read."""

    def __init__(self, root: Path, cols: int = 80, rows: int = 24) -> None:
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)}
        env.pop("NO_COLOR", None)
        self.started = time.perf_counter()
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the real command, as a user runs it
            os.chdir(root)
            os.execve(str(REPRO_TUI), [str(REPRO_TUI)], env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.text = b""

    def read_until(self, needle: str, timeout: float = 30.0, after: int = 0) -> float:
        """Seconds (perf_counter) at which ``needle`` appeared in the output after offset ``after``."""
        want = needle.encode()
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            plain = ESCAPES.sub(b"", self.text[after:])
            if want in plain:
                return time.perf_counter()
            ready, _, _ = select.select([self.fd], [], [], 0.005)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                self.text += chunk
        raise TimeoutError(f"{needle!r} did not appear; last output: {ESCAPES.sub(b'', self.text[-400:])!r}")

    def drain(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            ready, _, _ = select.select([self.fd], [], [], 0.01)
            if ready:
                try:
                    self.text += os.read(self.fd, 65536)
                except OSError:
                    return

    def send(self, keys: str) -> float:
        os.write(self.fd, keys.encode())
        return time.perf_counter()

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the screen's process (all its threads)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        try:
            self.send("q")
            for _ in range(100):
                if os.waitpid(self.pid, os.WNOHANG) != (0, 0):
                    break
                time.sleep(0.05)
            else:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        except (OSError, ChildProcessError):
            pass
        os.close(self.fd)


def build(base: Path, clones: int) -> Path:
    from workbench.demo import build_demo
    from workbench.workspace import Workspace

    root = base / "demo"
    shutil.rmtree(root, ignore_errors=True)
    build_demo(root)
    ws = Workspace(root)
    for i in range(1, clones + 1):
        ws.fork("prod", f"c{i}")
    ws.close()
    return root


def start_to_first_frame(root: Path, runs: int) -> tuple[list[float], list[float], list[float]]:
    """Wall time to the first frame and to the listed environments, and the CPU time the
    process had used at its first frame (which a busy machine does not inflate)."""
    frame, listed, cpu = [], [], []
    for _ in range(runs):
        term = Terminal(root)
        try:
            frame.append(term.read_until("Environments") - term.started)
            cpu.append(term.cpu_seconds())
            listed.append(term.read_until("repro/c1") - term.started)
        finally:
            term.close()
    return frame, listed, cpu


def reset_repaint(root: Path, clones: int) -> tuple[list[float], list[float], float, float]:
    """``r`` on each clone in turn: time to the first repaint that shows the reset under way,
    and to the notification that says how to undo it (each names its clone, so an older
    notice still on screen is never mistaken for the new one)."""
    first, done = [], []
    term = Terminal(root)
    try:
        term.read_until("repro/c1")
        term.drain(1.0)
        for i in range(1, clones + 1):
            mark = len(term.text)
            term.send("\x1b[B")                # down: the next clone
            term.read_until(f"prod ↔ c{i}", after=mark)
            term.drain(1.5)                    # its live diff is on screen
            mark = len(term.text)
            pressed = term.send("r")
            first.append(term.read_until(f"reset c{i}", after=mark) - pressed)
            done.append(term.read_until(f"c{i} reset to forked", after=mark) - pressed)
        term.drain(2.0)
        rss = term.rss_mb()
        cpu0, t0 = term.cpu_seconds(), time.perf_counter()
        term.drain(10.0)                       # idle: a clone selected, its diff live, nobody typing
        idle = (term.cpu_seconds() - cpu0) / (time.perf_counter() - t0)
    finally:
        term.close()
    return first, done, rss, idle


def row_table_first_paint(rows: int) -> dict[str, float]:
    from textual.app import App, ComposeResult
    from textual.geometry import Region

    from workbench.diff.model import Change
    from workbench.tui.presentation import build_views
    from workbench.tui.widgets.change_table import ChangeTable

    t0 = time.perf_counter()
    changes = [Change("data", f"db.orders[{i}].status", "changed", "paid", "refunded", store="db", table="orders",
                      key=[i], column="status") for i in range(rows)]
    made = time.perf_counter() - t0
    from workbench.diff.model import DiffReport

    report = DiffReport(left="prod", right="b1", data=changes)
    t0 = time.perf_counter()
    views = build_views(report, show_intended=False)
    arranged = time.perf_counter() - t0
    out: dict[str, float] = {"rows": rows, "make changes (engine side)": made, "arrange views (worker)": arranged}

    class Bench(App):
        def compose(self) -> ComposeResult:
            yield ChangeTable("data", id="rows")

    async def run() -> None:
        app = Bench()
        async with app.run_test(size=(80, 24)) as pilot:
            table = app.query_one(ChangeTable)
            await pilot.pause()
            t0 = time.perf_counter()
            table.set_changes(report.data, views.group_views[0])
            size = table.size
            table.render_lines(Region(0, 0, size.width, size.height))
            out["first page: set + paint"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            table.action_edge(1)                 # the last row: still one page of work
            table.render_lines(Region(0, 0, size.width, size.height))
            out["jump to the last row + paint"] = time.perf_counter() - t0
            await pilot.pause()

    asyncio.run(run())
    return out


def datatable_per_row(rows: int = 20_000) -> float:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    class Bench(App):
        def compose(self) -> ComposeResult:
            yield DataTable()

    result: dict[str, float] = {}

    async def run() -> None:
        app = Bench()
        async with app.run_test(size=(80, 24)) as pilot:
            table = app.query_one(DataTable)
            table.add_columns("", "key", "column", "values", "")
            data = [("~", str(i), "status", "paid → refunded", "") for i in range(rows)]
            t0 = time.perf_counter()
            table.add_rows(data)
            await pilot.pause()
            result["s"] = time.perf_counter() - t0

    asyncio.run(run())
    return result["s"] / rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    if not REPRO_TUI.exists():
        print(f"{REPRO_TUI} is missing: install the project first (make venv).", file=sys.stderr)
        return 1
    base = args.dir or Path(tempfile.mkdtemp(prefix="repro-bench-tui-"))
    os.environ.setdefault("REPRO_READY", "sync")
    med = statistics.median
    print("building the demo workspace with 5 clones ...", file=sys.stderr)
    root = build(base, clones=5)
    try:
        load = os.getloadavg()[0]
        frame, listed, cpu = start_to_first_frame(root, args.runs)
        first, done, rss, idle = reset_repaint(root, clones=5)
    finally:
        from workbench.backends.local import kill_services

        kill_services(root)
    print(f"process start -> first frame (demo, 80x24):      median {med(frame) * 1000:6.0f} ms  "
          f"(min {min(frame) * 1000:.0f}, max {max(frame) * 1000:.0f}; target <= 500)")
    print(f"  CPU time used by then:                         median {med(cpu) * 1000:6.0f} ms "
          f"(load average {load:.1f} on {os.cpu_count()} cores while measuring)")
    print(f"process start -> environments listed:            median {med(listed) * 1000:6.0f} ms")
    print(f"key r -> first repaint (reset under way):        median {med(first) * 1000:6.0f} ms")
    print(f"key r -> reset done, undo offered on screen:     median {med(done) * 1000:6.0f} ms")
    print(f"resident memory, 5 clones, each diff visited:    {rss:6.0f} MB (target <= 150)")
    print(f"CPU while idle (live diff of a clone on screen): {idle * 100:6.1f} % of one core")
    per_row = datatable_per_row()
    for rows in (1_000, 100_000, 1_000_000):
        r = row_table_first_paint(rows)
        print(f"row table, {rows:>9,} changed rows: first page {r['first page: set + paint'] * 1000:6.1f} ms, "
              f"last page {r['jump to the last row + paint'] * 1000:5.1f} ms; arranging them (worker) "
              f"{r['arrange views (worker)'] * 1000:5.0f} ms")
    print(f"  for comparison, DataTable: {per_row * 1e6:.0f} µs a row -> {per_row * 1_000_000:.0f} s for 1,000,000")
    if not args.dir:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
