"""Times the data diff against SQLite's ``sqldiff``, as whole commands, side by side.

    .venv/bin/python bench/bench_diff.py [--runs 7] [--rows 1000000] [--big-gb 0]

Each shape is a real workspace: prod's store, a clone forked by ``repro-tui fork`` and
100 of its rows changed; then ``repro-tui diff prod b1 --json`` (the whole process, as a
user runs it), ``sqldiff PROD CLONE`` (Debian package sqlite3-tools) and, for reference,
``python -m workbench.diff.sqlite PROD CLONE`` (the differ alone) are timed in turns.

* one table: 1M rows (5 columns); the clone is a file copy (a fork without scrub rules);
  also timed: a script loading both tables into Python dicts (the naive way);
* several tables: 1M rows over five tables (an integer key, a WITHOUT ROWID composite key,
  a text key, no key at all, a NOCASE key); a file copy;
* no page shared: prod has a history (rows appended, later ones grown and some deleted);
  the clone is a scrubbed fork that was then VACUUMed (as a clone's app or a user may do;
  the same holds when prod is VACUUMed after the fork), so no page lines up with prod's;
  also timed without the diff's C library (``REPRO_DIFF_NATIVE=0``), side by side;
* most pages shared: a scrubbed fork (prod's pages copied, only the scrubbed column
  rewritten), so every page of ``t`` but the changed ones is prod's own;
* Chinook (1 MB), nothing changed.

Scrubbed forks scrub a 1,000-row ``users`` table; sqldiff lists those rows too.
With ``--big-gb`` > 0 also: the store token and a full diff of two stores of that size
(against ``cat A B``). Last, the modules the CLI diff imports (``python -X importtime``).

Medians of ``--runs`` runs of wall time and of CPU time (user + system: on a busy machine
it moves less than the wall time), caches warm (files read from the page cache, as a live
diff does). Prints a Markdown table and writes it to bench/out/bench_diff.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
REPRO = str(Path(PY).with_name("repro-tui"))
CHINOOK = ROOT / "tests" / "data" / "Chinook_Sqlite.sqlite"
# bytecode is cached as it is on a user's machine (some shells here disable it)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": str(ROOT)}
SCRUB = "clone:\n  scrub:\n    db:\n      users.email: email\n"
DICTS = textwrap.dedent("""
    import sqlite3, sys
    def load(path):
        conn = sqlite3.connect(path)
        return {row[0]: row[1:] for row in conn.execute("SELECT * FROM t")}
    a, b = load(sys.argv[1]), load(sys.argv[2])
    changed = [(k, a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)]
    print(len(changed))
""")


# --- stores ----------------------------------------------------------------------------

def one_table(path: Path, rows: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL, note TEXT)")
    conn.execute("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?) "
                 "INSERT INTO t SELECT i, 'name' || i, i % 97, i * 0.5, substr(hex(randomblob(16)), 1, 5 + i % 26) "
                 "FROM c", (rows,))
    conn.close()


def with_history(path: Path, rows: int) -> None:
    """The one table as a store that has lived: appended, then some rows grown, some deleted."""
    one_table(path, rows)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE t SET note = note || ' (edited)' WHERE id % 20 = 3")
    conn.execute("DELETE FROM t WHERE id % 50 = 7")
    conn.close()


def several_tables(path: Path, rows: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    n = {"orders": rows * 45 // 100, "items": rows * 30 // 100, "customers": rows * 10 // 100,
         "events": rows * 10 // 100, "tags": rows * 5 // 100}
    conn.executescript("""
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total REAL, status TEXT);
        CREATE TABLE items (order_id INTEGER, line INTEGER, sku TEXT, qty INTEGER, PRIMARY KEY (order_id, line))
            WITHOUT ROWID;
        CREATE TABLE customers (code TEXT PRIMARY KEY, name TEXT, city TEXT);
        CREATE TABLE events (at INTEGER, kind TEXT, detail TEXT);
        CREATE TABLE tags (tag TEXT PRIMARY KEY COLLATE NOCASE, uses INTEGER);
    """)
    seq = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?) "
    conn.execute(seq + "INSERT INTO orders SELECT i, 'C' || (i % 1000), i * 0.25, 'paid' FROM c", (n["orders"],))
    conn.execute(seq + "INSERT INTO items SELECT i / 4, i % 4, 'SKU' || (i % 5000), 1 + i % 3 FROM c", (n["items"],))
    conn.execute(seq + "INSERT INTO customers SELECT printf('C%07d', i), 'Name ' || i, 'City ' || (i % 300) FROM c",
                 (n["customers"],))
    conn.execute(seq + "INSERT INTO events SELECT i, 'kind' || (i % 7), hex(randomblob(8)) FROM c", (n["events"],))
    conn.execute(seq + "INSERT INTO tags SELECT 'tag-' || i, i % 40 FROM c", (n["tags"],))
    conn.close()


def add_users(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
    conn.executemany("INSERT INTO users VALUES (?, ?)", [(i, f"person{i}@realmail.test") for i in range(1, 1001)])
    conn.close()


def vacuum_then_change(path: Path, rows: int) -> int:
    """The clone VACUUMed (every page rewritten, packed), then ``change_one_table``."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("VACUUM")
    conn.close()
    return change_one_table(path, rows)


def change_one_table(path: Path, rows: int) -> int:
    """100 rows of ``t`` changed (two columns each); returns the changes expected."""
    conn = sqlite3.connect(path, isolation_level=None)
    ids = [i for (i,) in conn.execute("SELECT id FROM t")]
    conn.execute("BEGIN")
    for i in random.Random(7).sample(ids, 100):
        conn.execute("UPDATE t SET qty = qty + 1, note = note || '!' WHERE id = ?", (i,))
    conn.execute("COMMIT")
    conn.close()
    return 200


def change_several(path: Path, rows: int) -> int:
    """100 rows over the five tables; returns the changes expected."""
    rng = random.Random(7)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for i in rng.sample(range(1, rows * 45 // 100), 40):
        conn.execute("UPDATE orders SET status = 'refunded' WHERE id = ?", (i,))
    for i in rng.sample(range(1, rows * 30 // 400), 30):
        conn.execute("UPDATE items SET qty = qty + 1 WHERE order_id = ? AND line = 1", (i,))
    for i in rng.sample(range(1, rows * 10 // 100), 20):
        conn.execute("UPDATE customers SET city = 'Lyon' WHERE code = ?", (f"C{i:07d}",))
    for i in rng.sample(range(1, rows * 10 // 100), 5):
        conn.execute("UPDATE events SET detail = 'x' WHERE at = ?", (i,))      # a row out, a row in
    conn.execute("COMMIT")
    conn.close()
    return 40 + 30 + 20 + 10


# --- timing ----------------------------------------------------------------------------

def race(cmds: list[tuple[list[str], Path | None]], runs: int) -> list[tuple[float, float, str]]:
    """Median wall time, median CPU time (user + system) and output of each command; runs
    are interleaved (a, b, c, a, b, c, ...) so that a change in the machine's load weighs
    on every command alike. CPU time is what the process itself used: on a busy machine
    it moves less than the wall time, which also counts the waits for a core."""
    for cmd, cwd in cmds:   # warm up: page cache, bytecode
        subprocess.run(cmd, cwd=cwd, env=ENV, check=True, capture_output=True)
    times: list[list[float]] = [[] for _ in cmds]
    cpus: list[list[float]] = [[] for _ in cmds]
    outs = [""] * len(cmds)
    for _ in range(runs):
        for i, (cmd, cwd) in enumerate(cmds):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            res = subprocess.run(cmd, cwd=cwd, env=ENV, check=True, capture_output=True, text=True)
            times[i].append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus[i].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            outs[i] = res.stdout
    return [(statistics.median(t), statistics.median(c), o) for t, c, o in zip(times, cpus, outs, strict=True)]


def in_process(fn: Callable[[], object], runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def workspace(tmp: Path, name: str, make: Callable[[Path], None], scrub: bool) -> tuple[Path, Path, Path]:
    """A workspace whose prod store ``make`` writes, and its clone b1: (root, prod file, clone file)."""
    ws = tmp / name
    (ws / "data").mkdir(parents=True)
    (ws / "repro.yaml").write_text("name: bench\nbackend: local\nstores:\n  db: {type: sqlite, path: data/prod.db}\n"
                                   + (SCRUB if scrub else ""))
    (ws / ".gitignore").write_text("data/\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(ws)], check=True)
    subprocess.run([*git, "add", "."], cwd=ws, check=True)
    subprocess.run([*git, "commit", "-qm", "bench workspace"], cwd=ws, check=True)
    prod = ws / "data" / "prod.db"
    make(prod)
    if scrub:
        add_users(prod)
    subprocess.run([PY, "-m", "workbench", "fork", "prod", "b1"], cwd=ws, env=ENV, check=True, capture_output=True)
    return ws, prod, ws / ".repro" / "data" / "b1" / "db" / "prod.db"


def shared_pages(a: Path, b: Path) -> str:
    """How many of prod's pages the clone holds with the same bytes: at the same page
    number, and anywhere in the file."""
    def pages(path: Path) -> list[bytes]:
        data = path.read_bytes()
        size = int.from_bytes(data[16:18], "big")
        size = 65536 if size == 1 else size
        return [data[i:i + size] for i in range(0, len(data), size)]

    pa, pb = pages(a), pages(b)
    same = sum(1 for x, y in zip(pa, pb, strict=False) if x == y)
    anywhere = set(pb)
    moved = sum(1 for x in pa if x in anywhere)
    return f"{100 * same / len(pa):.0f} % of pages shared, {100 * moved / len(pa):.0f} % anywhere"


def shape(tmp: Path, title: str, make: Callable[[Path], None], change: Callable[[Path], int] | None,
          scrub: bool, runs: int) -> list[str]:
    ws, prod, clone = workspace(tmp, title.split()[0] + str(len(title)), make, scrub)
    expected = change(clone) if change else 0
    (cli, cli_cpu, out), (sqldiff, sqldiff_cpu, _), (alone, _, _) = race([
        ([REPRO, "diff", "prod", "b1", "--json"], ws),
        (["sqldiff", str(prod), str(clone)], None),
        ([PY, "-m", "workbench.diff.sqlite", str(prod), str(clone)], None)], runs)
    data = json.loads(out)["data"]
    found = sum(c.get("count") or 1 for c in data if c["intent"] is None)
    assert found == expected, f"{title}: {found} changes reported, {expected} expected"
    mb = prod.stat().st_size / 1e6
    lines = [f"| {title} ({mb:.0f} MB; {shared_pages(prod, clone)}) | {cli * 1000:.0f} ms ({cli_cpu * 1000:.0f}) | "
             f"{sqldiff * 1000:.0f} ms ({sqldiff_cpu * 1000:.0f}) | **{sqldiff / cli:.1f}×** "
             f"({sqldiff_cpu / cli_cpu:.1f}×) | {alone * 1000:.0f} ms |"]
    if title.startswith("no page"):      # the same command without the C library's cell walk
        [(plain, plain_cpu, _)] = race([(["env", "REPRO_DIFF_NATIVE=0", REPRO, "diff", "prod", "b1", "--json"], ws)],
                                       runs)
        lines.append(f"| the same, without the diff's C library (`REPRO_DIFF_NATIVE=0`) | {plain * 1000:.0f} ms "
                     f"({plain_cpu * 1000:.0f}) | | **{sqldiff / plain:.1f}×** ({sqldiff_cpu / plain_cpu:.1f}×) | |")
    if title.startswith("one table"):    # the naive way: both tables loaded into Python dicts
        [(dicts, _, out)] = race([([PY, "-c", DICTS, str(prod), str(clone)], None)], max(1, runs // 3))
        assert out.strip() == "100"
        lines.append(f"| the same, both tables loaded into Python dicts | | {dicts * 1000:.0f} ms | "
                     f"**{dicts / cli:.1f}×** | |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--big-gb", type=float, default=0.0, help="size of the stores of the token and full-diff rows")
    ap.add_argument("--only", help="run only the shapes whose title contains this")
    args, _ = ap.parse_known_args()   # `make bench` passes the same BENCH_ARGS to every bench
    if not shutil.which("sqldiff"):
        print("sqldiff is missing: apt-get install -y sqlite3-tools", file=sys.stderr)
        return 1
    rows = args.rows
    shapes: list[tuple[str, Callable[[Path], None], Callable[[Path], int] | None, bool]] = [
        ("one table, file copy", lambda p: one_table(p, rows), lambda p: change_one_table(p, rows), False),
        ("several tables, file copy", lambda p: several_tables(p, rows), lambda p: change_several(p, rows), False),
        ("no page shared: prod with a history, scrubbed fork VACUUMed", lambda p: with_history(p, rows),
         lambda p: vacuum_then_change(p, rows), True),
        ("most pages shared: scrubbed fork", lambda p: one_table(p, rows), lambda p: change_one_table(p, rows), True),
        ("Chinook, nothing changed", lambda p: shutil.copyfile(CHINOOK, p), None, False),
    ]
    lines = [f"| shape: {rows // 1000}k rows, 100 changed | `repro-tui diff prod b1 --json` | `sqldiff PROD CLONE` "
             "| sqldiff / ours | `python -m workbench.diff.sqlite` |", "| --- | ---: | ---: | ---: | ---: |",
             "| (wall time, CPU time in parentheses) | | | | |"]
    tmp = Path(tempfile.mkdtemp(prefix="bench-diff-"))
    banned: list[str] = []
    try:
        for title, make, change, scrub in shapes:
            if args.only and args.only not in title:
                continue
            lines += shape(tmp, title, make, change, scrub, args.runs)
            print(lines[-1], flush=True)
        if args.big_gb > 0:
            lines += big_stores(tmp, args.big_gb, rows, args.runs)
        ws = next(tmp.glob("one*"), None)
        if ws is not None:   # what the CLI diff imports
            res = subprocess.run([PY, "-X", "importtime", "-m", "workbench", "diff", "prod", "b1", "--json"],
                                 cwd=ws, env=ENV, capture_output=True, text=True, check=True)
            modules = {line.split("|")[-1].strip().split(".")[0] for line in res.stderr.splitlines() if "|" in line}
            banned = sorted(modules & {"textual", "docker", "git", "rich", "deepdiff"})
            lines.append(f"| CLI diff imports textual, docker, git, rich or deepdiff | {', '.join(banned) or 'none'} "
                         "| | | |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table = "\n".join(lines)
    print(table)
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench_diff.md").write_text(table + "\n")
    return 1 if banned else 0


def big_stores(tmp: Path, gb: float, rows: int, runs: int) -> list[str]:
    """The store token at 10 MB and at ``gb``, and a full diff of two such stores against reading them."""
    from workbench.diff.sqlitepages import store_token

    small, big, big2 = tmp / "small.db", tmp / "big.db", tmp / "big2.db"
    one_table(small, 200_000)
    probe = tmp / "probe.db"
    one_table(probe, rows)
    per_row = probe.stat().st_size / rows
    one_table(big, int(gb * 1e9 / per_row))
    shutil.copyfile(big, big2)
    change_one_table(big2, 0)
    size = big.stat().st_size / 1e9
    (whole, _, _), (cat, _, _) = race([([PY, "-m", "workbench.diff.sqlite", str(big), str(big2)], None),
                                       (["sh", "-c", f"cat '{big}' '{big2}' > /dev/null"], None)], runs)
    [(sqldiff, _, _)] = race([(["sqldiff", str(big), str(big2)], None)], max(1, runs // 3))
    return [f"| store token, {small.stat().st_size / 1e6:.0f} MB / {size:.2f} GB (in process) | "
            f"{in_process(lambda: store_token(str(small)), 1001) * 1e6:.0f} µs / "
            f"{in_process(lambda: store_token(str(big)), 1001) * 1e6:.0f} µs | | | |",
            f"| two {size:.2f} GB stores, file copy, 100 rows changed (`cat A B`: {cat:.2f} s) | | "
            f"{sqldiff:.2f} s | **{sqldiff / whole:.1f}×** | {whole:.2f} s ({2 * size / whole:.1f} GB/s) |"]


if __name__ == "__main__":
    raise SystemExit(main())
