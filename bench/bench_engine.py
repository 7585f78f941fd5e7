"""End-to-end engine benchmark: fork, snapshot and reset of a workspace whose prod store is
a SQLite file of 10 MB / 100 MB (/ 1 GB with --big), side by side with `sqlite3 .backup`
and `cp` of the same file. Fork is measured until the clone is usable (its service healthy);
reset both for the data swap alone (from the journal) and end to end (service restarted).
The ready copies a fork and a reset leave to the background helper are waited for between
timings, not inside them, as a user gets them.

    .venv/bin/python bench/bench_engine.py [--sizes 10,100] [--runs 5] [--dir PATH]

--dir puts the workspace on another filesystem (e.g. a loop-mounted XFS with reflink=1:
see BENCHMARKS.md) so the reflink path is measured too.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GIT_AUTHOR_NAME", "bench")
os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@example.invalid")
os.environ.setdefault("GIT_COMMITTER_NAME", "bench")
os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@example.invalid")

YAML = """\
name: bench
services:
  web:
    command: python -m http.server {port} --bind 127.0.0.1
    port: 18999
    health: tcp
stores:
  db: {type: sqlite, path: data/orders.db}
clone:
  scrub:
    db:
      customers.email: email
"""


def make_db(path: Path, mb: int) -> None:
    rnd = random.Random(42)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT)")
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER, total REAL, status TEXT, note TEXT)")
    db.executemany("INSERT INTO customers VALUES (?, ?)", ((i, f"user{i}@mail.test") for i in range(1, 5001)))
    rows = mb * 1024 * 1024 // 110
    db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
                   ((i, rnd.randint(1, 5000), rnd.random() * 100, rnd.choice(["paid", "refunded", "new"]),
                     "x" * rnd.randint(40, 80)) for i in range(1, rows + 1)))
    db.execute("CREATE INDEX orders_customer ON orders(customer)")
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def wait_ready(ws, env: str, snapshot: str, timeout: float = 600) -> None:
    """Wait for the background helper's ready copy of ``env@snapshot`` (and its deletion of
    what the last reset replaced), so that the next timing starts on a quiet machine, as a
    user who resets a few seconds later finds it."""
    from workbench.lock import WriterLock

    sid = ws.state.snapshot(env, snapshot).id
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(s.ready_for(env) == sid for s in ws.stores.values()):
            lock = WriterLock(ws.repro_dir / "ready" / f"{env}.lock")
            lock.acquire("bench", timeout=timeout)
            lock.release()
            return
        time.sleep(0.02)
    raise SystemExit(f"the ready copy of {env}@{snapshot} was not made within {timeout:.0f} s")


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def bench_size(base: Path, mb: int, runs: int) -> list[tuple[str, float]]:
    from workbench.workspace import Workspace

    root = base / f"ws-{mb}"
    shutil.rmtree(root, ignore_errors=True)
    (root / "data").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "repro.yaml").write_text(YAML)
    (root / ".gitignore").write_text("data/\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "bench")
    db = root / "data" / "orders.db"
    make_db(db, mb)
    size = db.stat().st_size
    out: list[tuple[str, float]] = []
    backup, cp = [], []
    target = base / "copy.db"
    target.unlink(missing_ok=True)
    backup_cmd = ["sqlite3", str(db), f".backup '{target}'"]
    cp_cmd = ["cp", str(db), str(target)]
    for _ in range(runs):
        backup.append(timed(lambda: subprocess.run(backup_cmd, check=True)))
        target.unlink()
        cp.append(timed(lambda: subprocess.run(cp_cmd, check=True)))
        target.unlink()
    out += [("baseline sqlite3 .backup", med(backup)), ("baseline cp", med(cp))]
    ws = Workspace(root)
    fork, snap, reset_data, reset_total, undo = [], [], [], [], []
    for i in range(runs):
        name = f"b{i}"
        fork.append(timed(lambda n=name: ws.fork("prod", n)))  # the ready copy follows in the background
        wait_ready(ws, name, "forked")
        snap.append(timed(lambda n=name: ws.snapshot(n, "s1")))
        ws.make_ready(name, "s1")  # what the background helper does after a snapshot
        reset_total.append(timed(lambda n=name: ws.reset(n, "s1")))
        wait_ready(ws, name, "s1")
        entry = next(e for e in ws.journal(name, 5) if e.op == "reset")
        steps = {s["step"]: s["seconds"] for s in entry.steps}
        reset_data.append(steps["data swapped"])
        undo.append(timed(lambda n=name: ws.undo_reset(n)))
        ws.destroy(name, force=True)
    out += [("repro-tui fork (until healthy)", med(fork)), ("repro-tui snapshot", med(snap)),
            ("repro-tui reset: data swap", med(reset_data)), ("repro-tui reset: end to end", med(reset_total)),
            ("repro-tui reset --undo", med(undo))]
    ws.close()
    shutil.rmtree(root, ignore_errors=True)
    print(f"\n### SQLite store of {size / 1e6:.0f} MB ({runs} runs, medians)\n")
    print("| operation | median | vs sqlite3 .backup | vs cp |")
    print("| --- | ---: | ---: | ---: |")
    for name, value in out:
        print(f"| {name} | {value * 1000:.1f} ms | {value / med(backup):.2f}x | {value / med(cp):.2f}x |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,100")
    ap.add_argument("--big", action="store_true", help="add 1 GB")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", help="where to build the workspaces (default: a temporary folder)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] + ([1024] if args.big else [])
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="repro-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    from workbench.fsutil import supports_reflink

    print(f"filesystem of {base}: reflink {'yes' if supports_reflink(base) else 'no'}")
    try:
        for mb in sizes:
            bench_size(base, mb, args.runs)
    finally:
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
