"""Load: how fast `repro-tui list` (and other readers) answer in a workspace of many clones,
each with a running service, one snapshot more than its 'forked' one, and a long journal.

    .venv/bin/python bench/bench_load.py [--clones 20] [--runs 15] [--dir PATH]

Measures medians of: the interpreter alone (the floor of any command), `repro-tui list`,
`list --json`, `status CLONE`, `log`, and `Workspace.list_envs()` in one process (what the
screen calls on each refresh). The target is `list` in <= 200 ms with twenty clones.
"""

from __future__ import annotations

import argparse
import os
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
for var, value in (("GIT_AUTHOR_NAME", "bench"), ("GIT_AUTHOR_EMAIL", "bench@example.invalid"),
                   ("GIT_COMMITTER_NAME", "bench"), ("GIT_COMMITTER_EMAIL", "bench@example.invalid")):
    os.environ.setdefault(var, value)

YAML = """\
name: load
services:
  web:
    command: python -m http.server {port} --bind 127.0.0.1
    port: 18998
    health: tcp
stores:
  db: {type: sqlite, path: data/shop.db}
  uploads: {type: files, path: data/uploads}
clone:
  scrub:
    db:
      users.email: email
config_files: [config/*.yaml]
"""


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def build(root: Path, clones: int) -> None:
    """A workspace with ``clones`` running clones, each with a second snapshot."""
    from workbench.workspace import Workspace

    shutil.rmtree(root, ignore_errors=True)
    (root / "data" / "uploads").mkdir(parents=True)
    (root / "config").mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "repro.yaml").write_text(YAML)
    (root / "config" / "app.yaml").write_text("currency: EUR\n")
    (root / ".gitignore").write_text("data/\n")
    db = sqlite3.connect(root / "data" / "shop.db")
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
    db.executemany("INSERT INTO users VALUES (?, ?)", ((i, f"u{i}@mail.test") for i in range(2000)))
    db.commit()
    db.close()
    git(root, "add", "-A")
    git(root, "commit", "-qm", "load")
    os.environ["REPRO_READY"] = "sync"
    ws = Workspace(root)
    for i in range(clones):
        ws.fork("prod", f"c{i:02d}")
        ws.snapshot(f"c{i:02d}", "s1")
    ws.close()


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def cli(root: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "workbench", *args], cwd=root, env=env, capture_output=True)
    if r.returncode:
        raise SystemExit(f"repro-tui {' '.join(args)} failed: {r.stderr.decode()}")


def measure(root: Path, runs: int) -> list[tuple[str, float]]:
    from workbench.workspace import Workspace

    out = [("interpreter start (python -c pass)",
            median_ms(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), runs))]
    for args in (("list",), ("list", "--json"), ("status", "c10"), ("log",)):
        out.append((f"repro-tui {' '.join(args)}", median_ms(lambda args=args: cli(root, *args), runs)))
    ws = Workspace(root)
    try:
        out.append(("Workspace.list_envs() (the screen's refresh)", median_ms(ws.list_envs, runs)))
    finally:
        ws.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clones", type=int, default=20)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--dir", help="where to build the workspace (default: a temporary folder)")
    args = ap.parse_args()
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="repro-bench-load-"))
    root = base / "load"
    t0 = time.perf_counter()
    build(root, args.clones)
    built = time.perf_counter() - t0
    try:
        rows = measure(root, args.runs)
    finally:
        from workbench.backends.local import kill_services

        kill_services(root)
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)
    print(f"\n### {args.clones} running clones, 2 snapshots each ({args.runs} runs, medians; built in {built:.1f} s)\n")
    print("| reader | median |")
    print("| --- | ---: |")
    for name, ms in rows:
        print(f"| {name} | {ms:.0f} ms |")


if __name__ == "__main__":
    main()
