"""The pages narrow the SQLite diff down without changing its answer: WITHOUT ROWID tables
read by the keys on the pages that changed, rebuilt copies whose leaves moved, layouts
that share nothing. Each answer is checked against a plain comparison in Python."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.test_diff_sqlite import run


def naive(a: Path, b: Path, table: str, pk: list[str]) -> list[tuple[str, str]]:
    """(path, kind) of every change, from both tables loaded whole (values with their types)."""
    rows = []
    for path in (a, b):
        conn = sqlite3.connect(path)
        cur = conn.execute(f"SELECT * FROM {table}")
        cols = [d[0] for d in cur.description]
        rows.append({tuple((type(r[cols.index(k)]).__name__, r[cols.index(k)]) for k in pk):
                     {c: (type(v).__name__, v) for c, v in zip(cols, r, strict=True)} for r in cur})
        conn.close()
    left, right = rows
    out = []
    for key in set(left) | set(right):
        ktext = ",".join(json.dumps(v, ensure_ascii=False) if isinstance(v, str) else str(v) for _, v in key)
        base = f"db.{table}[{ktext}]"
        if key not in right:
            out.append((base, "removed"))
        elif key not in left:
            out.append((base, "added"))
        else:
            out += [(f"{base}.{c}", "changed") for c in left[key] if left[key][c] != right[key][c]]
    return sorted(out)


def got(changes, table: str) -> list[tuple[str, str]]:
    return sorted((c.path, c.kind) for c in changes if c.table == table and not c.schema)


def edit_items(path: Path, rng: random.Random, n: int) -> None:
    conn = sqlite3.connect(path)
    for _ in range(n):
        pick, o = rng.random(), rng.randint(0, 4000)
        if pick < 0.4:
            conn.execute("UPDATE items SET qty = qty + 1, note = ? WHERE order_id = ? AND line = 1",
                         ("n" * rng.randint(0, 300), o))
        elif pick < 0.6:
            conn.execute("DELETE FROM items WHERE order_id = ?", (o,))
        elif pick < 0.8:
            conn.execute("INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?, ?)", (o, 9, "new", 1, "é" * 50))
        else:
            conn.execute("UPDATE OR IGNORE items SET code = upper(code) WHERE order_id = ? AND line = 0", (o,))
    conn.commit()
    conn.close()


@pytest.mark.parametrize("seed", range(4))
def test_a_without_rowid_table_is_read_by_the_keys_on_its_changed_pages(tmp_path, seed):
    rng = random.Random(seed)
    a = tmp_path / "a.db"
    conn = sqlite3.connect(a)
    desc = " DESC" if seed % 2 else ""        # a key sorting descending is read key by key, not by span
    conn.execute("CREATE TABLE items (order_id INTEGER, line INTEGER, code TEXT COLLATE NOCASE, qty, note TEXT, "
                 f"PRIMARY KEY (order_id{desc}, line, code)) WITHOUT ROWID")
    conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?)",
                     [(i // 4, i % 4, f"c{i % 7}", rng.choice([1, 2.5, "3", None]), "x" * rng.randint(0, 40))
                      for i in range(16000)])
    conn.commit()
    conn.close()
    b = tmp_path / "b.db"
    shutil.copyfile(a, b)
    edit_items(b, rng, rng.randint(1, 12))
    changes, groups = run(a, b)
    assert got(changes, "items") == naive(a, b, "items", ["order_id", "line", "code"])
    assert "key span(s) read" in (groups["db.items"].note or "")        # not the whole table


def history(path: Path, rows: int, rng: random.Random) -> None:
    """A table appended in key order, then edited in place: its pages no longer in order."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, v)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, f"name{i}", i % 13) for i in range(1, rows + 1)])
    conn.commit()
    conn.execute("UPDATE t SET name = name || ' (edited)' WHERE id % 11 = 3")
    conn.execute("DELETE FROM t WHERE id % 29 = 5")
    conn.commit()
    conn.close()


def edit_t(path: Path, rng: random.Random, n: int) -> None:
    conn = sqlite3.connect(path)
    for _ in range(n):
        i = rng.randint(1, 20000)
        pick = rng.random()
        if pick < 0.5:
            conn.execute("UPDATE t SET v = ? WHERE id = ?", (rng.choice([1, 1.0, "1", None, b"\x01"]), i))
        elif pick < 0.7:
            conn.execute("DELETE FROM t WHERE id = ?", (i,))
        else:
            conn.execute("INSERT OR REPLACE INTO t VALUES (?, ?, ?)", (i + 30000, "new", 5))
    conn.commit()
    conn.close()


def rebuilt(src: Path, dest: Path) -> None:
    """A copy rebuilt row by row, as a scrubbed fork makes it: same rows, packed afresh."""
    conn = sqlite3.connect(dest)
    conn.execute("ATTACH ? AS src", (str(src),))
    conn.execute("CREATE TABLE main.pad (x)")             # the copy's pages start elsewhere
    conn.execute("CREATE TABLE main.t (id INTEGER PRIMARY KEY, name TEXT, v)")
    conn.execute("INSERT INTO main.t SELECT * FROM src.t")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("seed", range(3))
def test_a_rebuilt_copy_whose_leaves_moved_is_read_where_they_differ(tmp_path, seed):
    rng = random.Random(seed)
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    conn = sqlite3.connect(a)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, v)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, f"name{i}", i % 13) for i in range(1, 20001)])
    conn.commit()
    conn.close()
    rebuilt(a, b)
    writer = None
    if seed == 0:        # the edits stay in the -wal file: its frames are laid over the pages read
        writer = sqlite3.connect(b, isolation_level=None)
        writer.execute("PRAGMA journal_mode = WAL")
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute("SELECT count(*) FROM t").fetchone()     # held open: the edits are not checkpointed
    edit_t(b, rng, rng.randint(1, 10))
    assert seed or Path(f"{b}-wal").stat().st_size > 0
    try:
        changes, groups = run(a, b)
        assert got(changes, "t") == naive(a, b, "t", ["id"])
        assert "range(s) read" in (groups["db.t"].note or "")           # identical leaves paired, not every row
    finally:
        if writer is not None:
            writer.close()


@pytest.mark.parametrize("seed", range(3))
def test_layouts_that_share_nothing_are_compared_row_by_row(tmp_path, seed):
    rng = random.Random(seed)
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    history(a, 20000, rng)
    rebuilt(a, b)
    edit_t(b, rng, rng.randint(1, 10))
    changes, groups = run(a, b)
    assert got(changes, "t") == naive(a, b, "t", ["id"])
    assert groups["db.t"].status == "compared"
