"""Times the data diff against the usual ways, as whole commands, side by side.

    .venv/bin/python bench/bench_diff.py [--runs 5] [--rows 1000000] [--big-gb 1.0]

1. a 1M-row SQLite table (5 columns) with 100 changed rows, in a clone made by copying
   prod's file (what a fork without scrub rules makes): ``repro-tui diff prod b1 --json``
   in a real workspace, ``python -m workbench.diff.sqlite A B``, SQLite's ``sqldiff``
   (Debian package sqlite3-tools) and a script loading both tables into Python dicts;
2. the same 100 changes in a copy rebuilt with another page size, so that no page is
   shared (a scrubbed fork rebuilds its copy): every row compared in SQL;
3. "has this store changed since a known point": the store token, at 10 MB and 1 GB;
4. a full comparison of two 1 GB stores (a copy with 100 changed rows), against the time
   to merely read both files (``cat A B > /dev/null``);
5. the modules the CLI diff imports (``python -X importtime``): no textual, docker or git.

Medians of ``--runs`` runs (5), caches warm (the files are read from the page cache, as
for a live diff). Prints a Markdown table and writes it to bench/out/bench_diff.md.
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
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
# bytecode is cached as it is on a user's machine (some shells here disable it)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": str(ROOT)}

DICTS = textwrap.dedent("""
    import sqlite3, sys
    def load(path):
        conn = sqlite3.connect(path)
        return {row[0]: row[1:] for row in conn.execute("SELECT * FROM t")}
    a, b = load(sys.argv[1]), load(sys.argv[2])
    changed = [(k, a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)]
    print(len(changed))
""")


def make_table(path: Path, rows: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL, note TEXT)")
    conn.execute("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?) "
                 "INSERT INTO t SELECT i, 'name' || i, i % 97, i * 0.5, substr(hex(randomblob(16)), 1, 5 + i % 26) "
                 "FROM c", (rows,))
    conn.close()


def change_rows(path: Path, rows: int, n: int = 100, seed: int = 7) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for i in random.Random(seed).sample(range(1, rows + 1), n):
        conn.execute("UPDATE t SET qty = qty + 1, note = note || '!' WHERE id = ?", (i,))
    conn.execute("COMMIT")
    conn.close()


def race(cmds: list[tuple[list[str], Path | None]], runs: int) -> list[tuple[float, str]]:
    """Median wall time and output of each command; runs are interleaved (a, b, c, a, b, c, ...)
    so that a change in the machine's load weighs on every command alike."""
    for cmd, cwd in cmds:   # warm up: page cache, bytecode
        subprocess.run(cmd, cwd=cwd, env=ENV, check=True, capture_output=True)
    times: list[list[float]] = [[] for _ in cmds]
    outs = [""] * len(cmds)
    for _ in range(runs):
        for i, (cmd, cwd) in enumerate(cmds):
            t0 = time.perf_counter()
            res = subprocess.run(cmd, cwd=cwd, env=ENV, check=True, capture_output=True, text=True)
            times[i].append(time.perf_counter() - t0)
            outs[i] = res.stdout
    return [(statistics.median(t), o) for t, o in zip(times, outs, strict=True)]


def in_process(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def workspace(tmp: Path, prod_db: Path, rows: int) -> Path:
    ws = tmp / "ws"
    (ws / "data").mkdir(parents=True)
    (ws / "repro.yaml").write_text("name: bench\nbackend: local\nstores:\n  db: {type: sqlite, path: data/prod.db}\n")
    (ws / ".gitignore").write_text("data/\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(ws)], check=True)
    subprocess.run([*git, "add", "."], cwd=ws, check=True)
    subprocess.run([*git, "commit", "-qm", "bench workspace"], cwd=ws, check=True)
    shutil.copyfile(prod_db, ws / "data" / "prod.db")
    subprocess.run([PY, "-m", "workbench", "fork", "prod", "b1"], cwd=ws, env=ENV, check=True, capture_output=True)
    change_rows(ws / ".repro" / "data" / "b1" / "db" / "prod.db", rows)
    return ws


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--big-gb", type=float, default=1.0, help="size of the stores of parts 3 and 4 (0: skip)")
    args, _ = ap.parse_known_args()   # `make bench` passes the same BENCH_ARGS to every bench
    if not shutil.which("sqldiff"):
        print("sqldiff is missing: apt-get install -y sqlite3-tools", file=sys.stderr)
        return 1
    from workbench.diff.sqlitepages import store_token

    lines = ["| what | command | median | vs ours |", "| --- | --- | ---: | ---: |"]
    tmp = Path(tempfile.mkdtemp(prefix="bench-diff-"))
    try:
        prod = tmp / "prod.db"
        make_table(prod, args.rows)
        copy, rebuilt = tmp / "copy.db", tmp / "rebuilt.db"
        shutil.copyfile(prod, copy)
        change_rows(copy, args.rows)
        conn = sqlite3.connect(rebuilt, isolation_level=None)   # same rows, no page in common with prod
        conn.execute("PRAGMA page_size = 8192")
        conn.execute("ATTACH ? AS c", (str(copy),))
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL, note TEXT)")
        conn.execute("INSERT INTO main.t SELECT * FROM c.t")
        conn.close()
        mb = prod.stat().st_size / 1e6
        ws = workspace(tmp, prod, args.rows)

        # 1. a copy with 100 changed rows
        (cli, o1), (ours, o2), (sqldiff, o3), (dicts, o4) = race([
            ([PY, "-m", "workbench", "diff", "prod", "b1", "--json"], ws),
            ([PY, "-m", "workbench.diff.sqlite", str(prod), str(copy)], None),
            (["sqldiff", str(prod), str(copy)], None),
            ([PY, "-c", DICTS, str(prod), str(copy)], None)], args.runs)
        assert o1.count('"kind": "changed"') == 200, "the CLI should report 100 rows x 2 columns"
        assert len(o2.splitlines()) == 200 and len(o3.splitlines()) == 100 and o4.strip() == "100"
        title = f"{args.rows // 1000}k rows ({mb:.0f} MB), 100 changed, file copy"
        lines += [f"| {title} | `repro-tui diff prod b1 --json` | {cli:.3f} s | 1.0× |",
                  f"| | `python -m workbench.diff.sqlite A B` | {ours:.3f} s | {ours / cli:.2f}× |",
                  f"| | `sqldiff A B` | {sqldiff:.3f} s | **{sqldiff / cli:.1f}×** slower |",
                  f"| | Python dicts | {dicts:.3f} s | **{dicts / cli:.1f}×** slower |"]

        # 2. the same changes, another page layout: every row compared in SQL
        (full, out), (sqldiff2, _) = race([([PY, "-m", "workbench.diff.sqlite", str(prod), str(rebuilt)], None),
                                           (["sqldiff", str(prod), str(rebuilt)], None)], args.runs)
        assert len(out.splitlines()) == 200
        title = "same changes, rebuilt copy (8 KB pages: nothing shared)"
        lines += [f"| {title} | `python -m workbench.diff.sqlite A B` | {full:.3f} s | 1.0× |",
                  f"| | `sqldiff A B` | {sqldiff2:.3f} s | {sqldiff2 / full:.1f}× slower |",
                  f"| | (rows compared per second) | {args.rows / full / 1e6:.1f} M/s | |"]

        # 3 and 4. tokens at 10 MB and 1 GB; full comparison of two 1 GB stores
        small = tmp / "small.db"
        make_table(small, 200_000)
        lines.append(f"| changed since a known point, {small.stat().st_size / 1e6:.0f} MB | store token (in process) | "
                     f"{in_process(lambda: store_token(str(small)), 1001) * 1e6:.0f} µs | |")
        if args.big_gb > 0:
            big, big2 = tmp / "big.db", tmp / "big2.db"
            make_table(big, int(args.rows * args.big_gb * 1000 / mb))
            shutil.copyfile(big, big2)
            change_rows(big2, int(args.rows * args.big_gb * 1000 / mb))
            gb = big.stat().st_size / 1e9
            lines.append(f"| changed since a known point, {gb:.2f} GB | store token (in process) | "
                         f"{in_process(lambda: store_token(str(big)), 1001) * 1e6:.0f} µs | |")
            (whole, out), (cat, _) = race([([PY, "-m", "workbench.diff.sqlite", str(big), str(big2)], None),
                                           (["sh", "-c", f"cat '{big}' '{big2}' > /dev/null"], None)], args.runs)
            assert len(out.splitlines()) == 200
            [(sqldiff3, _)] = race([(["sqldiff", str(big), str(big2)], None)], max(1, args.runs // 2))
            lines += [f"| two {gb:.2f} GB stores, 100 rows changed | `python -m workbench.diff.sqlite A B` | "
                      f"{whole:.3f} s ({2 * gb / whole:.1f} GB/s) | 1.0× |",
                      f"| | `cat A B > /dev/null` (reading both) | {cat:.3f} s ({2 * gb / cat:.1f} GB/s) | "
                      f"{cat / whole:.2f}× |",
                      f"| | `sqldiff A B` | {sqldiff3:.3f} s | {sqldiff3 / whole:.1f}× slower |"]

        # 5. what the CLI diff imports
        res = subprocess.run([PY, "-X", "importtime", "-m", "workbench", "diff", "prod", "b1", "--json"], cwd=ws,
                             env=ENV, capture_output=True, text=True, check=True)
        modules = {line.split("|")[-1].strip().split(".")[0] for line in res.stderr.splitlines() if "|" in line}
        banned = sorted(modules & {"textual", "docker", "git", "rich"})
        lines.append(f"| CLI diff imports | textual, docker, git, rich | {', '.join(banned) or 'none'} | |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table = "\n".join(lines)
    print(table)
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench_diff.md").write_text(table + "\n")
    return 1 if banned else 0


if __name__ == "__main__":
    raise SystemExit(main())
