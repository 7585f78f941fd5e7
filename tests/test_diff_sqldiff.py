"""The SQLite diff against SQLite's own ``sqldiff``, fact by fact, over seeded random changes.

Each round copies a store (Chinook and a set of awkward tables), changes the copy with a
seeded batch of mutations (rows, keys, storage classes, schema, WAL, VACUUM) and diffs the
two files with both tools. ``tests/sqldiff_oracle.py`` turns both outputs into facts and
names every difference of representation it sets aside; any other disagreement fails
with the seed and the mutations that led to it. Most rounds call the differ as the
workspace does; some run ``repro-tui diff prod CLONE --json`` on a forked clone.

``sqldiff`` is the Debian package sqlite3-tools; ``scripts/test-setup.sh`` installs it
under CI, where a missing one fails these tests instead of skipping them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DATA, git, run_cli
from tests.sqldiff_oracle import compare
from workbench.diff.sqlite import Options, diff_files

if not shutil.which("sqldiff"):
    if os.environ.get("CI") == "true":
        raise RuntimeError("sqldiff is missing (apt-get install sqlite3-tools): scripts/test-setup.sh installs it")
    pytest.skip("sqldiff is missing: apt-get install sqlite3-tools", allow_module_level=True)

ROUNDS = 300                 # differ rounds, in chunks of CHUNK seeds
CHUNK = 10
CLI_ROUNDS = 8               # rounds through `repro-tui diff --json` on forked clones

AWKWARD = """
CREATE TABLE ck (a INTEGER, b TEXT, v, PRIMARY KEY (a, b));
CREATE TABLE wr (k TEXT, n INTEGER, data BLOB, PRIMARY KEY (k, n)) WITHOUT ROWID;
CREATE TABLE dup (x, y TEXT);
CREATE TABLE aff (id INTEGER PRIMARY KEY, u, n NUMERIC, r REAL, t TEXT, i INTEGER, b BLOB);
CREATE TABLE uni (id INTEGER PRIMARY KEY, s TEXT);
CREATE TABLE big (id INTEGER PRIMARY KEY, body TEXT, raw BLOB);
CREATE TABLE st (id INTEGER PRIMARY KEY, s TEXT, a ANY) STRICT;
CREATE TABLE nk (id INTEGER PRIMARY KEY DESC, v TEXT);
CREATE TABLE nc (k TEXT PRIMARY KEY COLLATE NOCASE, v TEXT COLLATE NOCASE, n INTEGER);
CREATE TABLE raw (id INTEGER PRIMARY KEY, b BLOB, t TEXT, g TEXT GENERATED ALWAYS AS (CAST(b AS TEXT)));
CREATE TABLE uk (a, b, v, PRIMARY KEY (a, b));
CREATE INDEX aff_t ON aff (t);
"""
UNICODE = ["", "é", "Ça plane — 東京", "👩\u200d🔬", "a\u0301", "שלום", "it's", "line\nbreak", "semi;colon", " ",
           "NULL", "x'00'"]


class Val:
    """A value to write, as SQL and its parameter (TEXT that is not UTF-8 needs a CAST)."""

    def __init__(self, sql: str, arg: Any) -> None:
        self.sql, self.arg = sql, arg


def plain(v: Any) -> Val:
    return Val("?", v)


def some_value(rng: random.Random, *, nul: bool = True) -> Val:
    pick = rng.random()
    if pick < 0.1:
        return plain(None)
    if pick < 0.3:
        return plain(rng.choice([0, 1, -1, 7, 2**31, -(2**62), rng.randint(-1000, 1000)]))
    if pick < 0.45:
        return plain(rng.choice([0.5, 1.0, -2.25, 3.0, -0.0, 1e-7, 123.456, rng.uniform(-1e6, 1e6), 1.5e300]))
    if pick < 0.7:
        text = rng.choice(UNICODE) + str(rng.randint(0, 99))
        return plain(text + ("\0tail" if nul and rng.random() < 0.1 else ""))
    if pick < 0.8:
        return Val("CAST(? AS TEXT)", rng.choice([b"A\xffB", b"\xc3", b"ok\\x\xfe", b"\xf0\x9f"]))
    if pick < 0.95:
        return plain(rng.randbytes(rng.choice([0, 1, 5, 16, 17, 300])))
    return plain(rng.choice(["1", "1.0", " 2", "007"]))        # text that looks like a number


def key_text(rng: random.Random) -> str:
    return rng.choice(["a", "B", "é", "k", "Zz", "東", "it's"]) + str(rng.randint(0, 40))


def fill(conn: sqlite3.Connection, rng: random.Random) -> None:
    """Rows of the awkward tables: NULL keys, duplicates, every storage class."""
    for i in range(40):
        insert(conn, "ck", plain(rng.choice([i, i, None])), plain(rng.choice([key_text(rng), None])), some_value(rng))
        insert(conn, "wr", plain(key_text(rng)), plain(rng.randint(0, 5)), plain(rng.randbytes(rng.randint(0, 40))))
        insert(conn, "dup", plain(rng.choice([1, 2, 1.0])), plain(rng.choice(["d", "e", None])))
        insert(conn, "aff", plain(i), *(some_value(rng) for _ in range(6)))
        insert(conn, "uni", plain(i), plain(rng.choice(UNICODE)))
        insert(conn, "st", plain(i), plain(rng.choice(UNICODE)), some_value(rng))
        insert(conn, "nk", plain(rng.choice([i, None, None])), plain(key_text(rng)))
        insert(conn, "nc", plain(key_text(rng)), plain(rng.choice(UNICODE)), plain(i))
        conn.execute("INSERT INTO raw (id, b, t) VALUES (?, ?, ?)", (i, rng.randbytes(3), rng.choice(UNICODE)))
        insert(conn, "uk", plain(rng.choice([1, 2, 3.5, "x"])), plain(rng.choice(["u", "w"])), plain(i))
    for i in range(3):
        insert(conn, "big", plain(i), plain("b" * rng.choice([10, 5000, 1_000_000])),
               plain(rng.randbytes(rng.choice([0, 70_000]))))


def insert(conn: sqlite3.Connection, table: str, *values: Val) -> None:
    conn.execute(f"INSERT OR IGNORE INTO {table} VALUES ({', '.join(v.sql for v in values)})",
                 [v.arg for v in values])


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """Chinook with the awkward tables beside it, filled from a fixed seed."""
    path = tmp_path_factory.mktemp("sqldiff") / "base.db"
    shutil.copyfile(DATA / "Chinook_Sqlite.sqlite", path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(AWKWARD)
    conn.execute("BEGIN")
    fill(conn, random.Random(0))
    conn.execute("COMMIT")
    conn.close()
    return path


CHINOOK_TEXT = [("Track", "Name"), ("Artist", "Name"), ("Customer", "Company"), ("Customer", "City"),
                ("Album", "Title"), ("Employee", "Title"), ("Playlist", "Name")]
CHINOOK_NUM = [("Invoice", "Total"), ("Track", "Milliseconds"), ("InvoiceLine", "Quantity"), ("Track", "UnitPrice")]
AWKWARD_ROWS = {"ck": ["v"], "aff": ["u", "n", "r", "t", "i", "b"], "uni": ["s"], "big": ["body", "raw"],
                "st": ["a"], "nk": ["v"], "nc": ["v", "n"], "raw": ["b", "t"], "uk": ["v"], "wr": ["data"],
                "dup": ["x", "y"]}


def mutate(conn: sqlite3.Connection, rng: random.Random, log: list[str]) -> None:
    """One random change to the right file, or none when SQLite refuses it."""
    ops = [chinook_update, chinook_update, chinook_rows, chinook_key, awkward_update, awkward_update,
           awkward_rows, awkward_key, schema_change]
    op = rng.choice(ops)
    try:
        op(conn, rng, log)
    except sqlite3.Error as exc:          # a constraint, a column that cannot go: try another
        log.append(f"  (refused: {exc})")


def run_sql(conn: sqlite3.Connection, log: list[str], sql: str, params: list[Any] | tuple = ()) -> None:
    log.append(f"{sql} {list(params)!r}"[:300])
    conn.execute(sql, params)


def a_rowid(conn: sqlite3.Connection, rng: random.Random, table: str) -> int | None:
    row = conn.execute(f"SELECT rowid FROM {table} ORDER BY random() LIMIT 1").fetchone()
    return row[0] if row else None


def chinook_update(conn, rng, log) -> None:
    table, col = rng.choice(CHINOOK_TEXT if rng.random() < 0.6 else CHINOOK_NUM)
    rid = a_rowid(conn, rng, table)
    if col in ("Total", "UnitPrice"):
        value: Any = rng.choice([round(rng.uniform(0, 30), 2), 0.99, None])
    elif col in ("Milliseconds", "Quantity"):
        value = rng.randint(0, 10**6)
    else:
        value = None if rng.random() < 0.1 else rng.choice(UNICODE + ["Rock & Roll"]) + rng.choice(["", "!"])
    run_sql(conn, log, f"UPDATE {table} SET {col} = ? WHERE rowid = ?", (value, rid))


def chinook_rows(conn, rng, log) -> None:
    pick = rng.random()
    if pick < 0.4:
        table = rng.choice(["InvoiceLine", "PlaylistTrack", "Track"])
        run_sql(conn, log, f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} ORDER BY random() "
                           f"LIMIT {rng.randint(1, 5)})")
    elif pick < 0.7:
        run_sql(conn, log, "INSERT OR IGNORE INTO Genre VALUES (?, ?)", (rng.randint(26, 60), rng.choice(UNICODE)))
    else:
        run_sql(conn, log, "INSERT OR IGNORE INTO PlaylistTrack VALUES (?, ?)",
                (rng.randint(1, 18), rng.randint(1, 3503)))


def chinook_key(conn, rng, log) -> None:
    if rng.random() < 0.5:
        run_sql(conn, log, "UPDATE OR IGNORE Genre SET GenreId = GenreId + 100 WHERE GenreId = ?",
                (rng.randint(1, 25),))
    else:
        run_sql(conn, log, "UPDATE OR IGNORE PlaylistTrack SET TrackId = ? WHERE rowid = ?",
                (rng.randint(1, 3503), a_rowid(conn, rng, "PlaylistTrack")))


def awkward_update(conn, rng, log) -> None:
    table = rng.choice(list(AWKWARD_ROWS))
    col = rng.choice(AWKWARD_ROWS[table])
    if table == "st" or (table == "dup" and col == "y"):
        value = plain(rng.choice(UNICODE)) if table == "dup" else some_value(rng)
    elif table == "big":
        value = plain("c" * rng.choice([3, 1_000_000]) if col == "body" else rng.randbytes(rng.choice([5, 70_000])))
    elif table in ("nc", "uni"):
        value = plain(rng.choice(UNICODE).upper() if rng.random() < 0.5 else rng.choice(UNICODE))
    elif table == "aff" and rng.random() < 0.4:     # the same number, another storage class
        run_sql(conn, log, f"UPDATE aff SET {col} = CAST({col} AS REAL) WHERE typeof({col}) = 'integer' "
                           f"AND rowid = ?", (a_rowid(conn, rng, table),))
        return
    elif table == "dup" and rng.random() < 0.5:     # one more copy of a row
        run_sql(conn, log, "INSERT INTO dup SELECT x, y FROM dup WHERE rowid = ?", (a_rowid(conn, rng, table),))
        return
    else:
        value = some_value(rng, nul=table != "wr")
    where = "k = (SELECT k FROM nc ORDER BY random() LIMIT 1)" if table == "nc" else \
        "rowid = ?" if table != "wr" else "k = (SELECT k FROM wr ORDER BY random() LIMIT 1)"
    params = [value.arg] + ([a_rowid(conn, rng, table)] if "?" in where else [])
    run_sql(conn, log, f"UPDATE {table} SET {col} = {value.sql} WHERE {where}", params)


def awkward_rows(conn, rng, log) -> None:
    table = rng.choice(["ck", "nk", "dup", "wr", "uni", "uk", "aff"])
    if rng.random() < 0.4:
        run_sql(conn, log, f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} ORDER BY random() LIMIT 2)"
                if table != "wr" else "DELETE FROM wr WHERE k = (SELECT k FROM wr ORDER BY random() LIMIT 1)")
        return
    rows = {"ck": ("INSERT OR IGNORE INTO ck VALUES (?, ?, ?)", (rng.choice([None, rng.randint(0, 50)]),
                                                                  rng.choice([None, key_text(rng)]), "new")),
            "nk": ("INSERT INTO nk VALUES (?, ?)", (rng.choice([None, rng.randint(50, 90)]), key_text(rng))),
            "dup": ("INSERT INTO dup VALUES (?, ?)", (rng.choice([1, 2, 1.0, "1"]), rng.choice(["d", "e", None]))),
            "wr": ("INSERT OR IGNORE INTO wr VALUES (?, ?, ?)", (key_text(rng), rng.randint(0, 9), b"\x00\x01")),
            "uni": ("INSERT OR IGNORE INTO uni VALUES (?, ?)", (rng.randint(0, 80), rng.choice(UNICODE))),
            "uk": ("INSERT OR IGNORE INTO uk VALUES (?, ?, ?)", (rng.choice([1, 1.0, 2.5, "1"]), "z", "n")),
            "aff": ("INSERT OR IGNORE INTO aff (id, u) VALUES (?, ?)", (rng.randint(0, 80), rng.choice([1, 1.0, "1"])))}
    sql, params = rows[table]
    run_sql(conn, log, sql, params)


def awkward_key(conn, rng, log) -> None:
    pick = rng.random()
    if pick < 0.25:
        run_sql(conn, log, "UPDATE OR IGNORE nc SET k = upper(k) "
                           "WHERE k = (SELECT k FROM nc ORDER BY random() LIMIT 1)")
    elif pick < 0.45:
        run_sql(conn, log, "UPDATE OR IGNORE uk SET a = CAST(a AS REAL) WHERE typeof(a) = 'integer' AND rowid = ?",
                (a_rowid(conn, rng, "uk"),))
    elif pick < 0.65:
        run_sql(conn, log, "UPDATE OR IGNORE wr SET k = ? WHERE k = (SELECT k FROM wr ORDER BY random() LIMIT 1)",
                (key_text(rng),))
    elif pick < 0.85:
        run_sql(conn, log, "UPDATE OR IGNORE ck SET b = ? WHERE rowid = ?",
                (rng.choice([None, key_text(rng)]), a_rowid(conn, rng, "ck")))
    else:
        run_sql(conn, log, "UPDATE nk SET id = ? WHERE rowid = ?", (rng.choice([None, rng.randint(100, 200)]),
                                                                    a_rowid(conn, rng, "nk")))


def schema_change(conn, rng, log) -> None:
    n = rng.randint(0, 10**6)
    table = rng.choice(["uni", "dup", "ck", "Genre", "aff"])
    pick = rng.random()
    if pick < 0.3:
        default = rng.choice(["", " DEFAULT 5", " DEFAULT 'x'", " DEFAULT NULL"])
        run_sql(conn, log, f"ALTER TABLE {table} ADD COLUMN c{n}{default}")
    elif pick < 0.5:
        col = {"uni": "s", "dup": "y", "ck": "v", "Genre": "Name", "aff": "r"}[table]
        run_sql(conn, log, f"CREATE INDEX ix{n} ON {table} ({col})")
    elif pick < 0.6:
        run_sql(conn, log, rng.choice(["DROP INDEX aff_t", "DROP INDEX IFK_TrackGenreId"]))
    elif pick < 0.75:
        run_sql(conn, log, f"CREATE TABLE t{n} (id INTEGER PRIMARY KEY, v TEXT)")
        run_sql(conn, log, f"INSERT INTO t{n} VALUES (1, 'x'), (2, NULL)")
    elif pick < 0.85:
        run_sql(conn, log, f"DROP TABLE {rng.choice(['uni', 'dup', 'raw', 'st'])}")
    elif pick < 0.93:
        run_sql(conn, log, f"ALTER TABLE {rng.choice(['uni', 'aff'])} RENAME COLUMN {rng.choice(['s', 'u'])} TO r{n}")
    else:
        run_sql(conn, log, f"ALTER TABLE {rng.choice(['aff', 'dup'])} DROP COLUMN {rng.choice(['i', 'y'])}")


def make_round(base: Path, where: Path, seed: int) -> tuple[Path, Path, list[str], sqlite3.Connection | None]:
    """prod (the base) and a changed copy; a WAL writer left open when the round uses WAL."""
    rng = random.Random(seed)
    left, right = where / f"prod-{seed}.db", where / f"clone-{seed}.db"
    shutil.copyfile(base, left)
    shutil.copyfile(base, right)
    log = [f"seed {seed}"]
    return left, right, log, change(right, rng, log)


def change(right: Path, rng: random.Random, log: list[str]) -> sqlite3.Connection | None:
    wal = rng.random() < 0.15
    conn = sqlite3.connect(right, isolation_level=None)
    if wal:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        log.append("WAL, not checkpointed")
    for _ in range(rng.randint(1, 14)):
        mutate(conn, rng, log)
    finish = rng.random()
    if finish < 0.1:
        log.append("VACUUM")
        conn.execute("VACUUM")
    elif finish < 0.15 and not wal:
        log.append("VACUUM INTO (rebuilt: no page shared)")
        conn.execute("VACUUM INTO ?", (f"{right}.new",))
        conn.close()
        os.replace(f"{right}.new", right)
        return None
    if wal:
        return conn            # kept open: the frames stay in the -wal file while both tools read
    conn.close()
    return None


def check(left: Path, right: Path, changes: list[dict[str, Any]], log: list[str]) -> None:
    verdict = compare(left, right, changes)
    assert verdict.agree, "\n".join(log) + "\n" + verdict.explain()


@pytest.mark.parametrize("chunk", range(ROUNDS // CHUNK))
def test_the_differ_agrees_with_sqldiff(base, tmp_path, chunk):
    for seed in range(chunk * CHUNK, (chunk + 1) * CHUNK):
        left, right, log, writer = make_round(base, tmp_path, seed)
        try:
            found = diff_files(str(left), str(right), Options(store="db"), use_cache=False)
            changes = json.loads(json.dumps([c.as_dict() for c in found], ensure_ascii=False))
            check(left, right, changes, log)
        finally:
            if writer is not None:
                writer.close()
        for p in tmp_path.glob(f"*-{seed}.db*"):
            p.unlink()


def test_the_command_line_agrees_with_sqldiff(base, tmp_path):
    """Clones forked by repro-tui, changed, and diffed by `repro-tui diff prod CLONE --json`."""
    root = tmp_path / "ws"
    (root / "data").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "repro.yaml").write_text("name: music\nstores:\n  db: {type: sqlite, path: data/store.db}\n")
    (root / ".gitignore").write_text("data/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "store")
    prod = root / "data" / "store.db"
    shutil.copyfile(base, prod)
    for i in range(CLI_ROUNDS):
        seed = 10_000 + i
        r = run_cli("fork", "prod", f"c{i}", cwd=root)
        assert r.returncode == 0, r.stderr
        clone = root / ".repro" / "data" / f"c{i}" / "db" / "store.db"
        log = [f"seed {seed} (command line)"]
        writer = change(clone, random.Random(seed), log)
        try:
            r = run_cli("diff", "prod", f"c{i}", "--json", cwd=root)
            assert r.returncode == 0, "\n".join(log) + "\n" + r.stderr
            check(prod, clone, json.loads(r.stdout)["data"], log)
        finally:
            if writer is not None:
                writer.close()


def test_the_oracle_sees_a_planted_difference(base, tmp_path):
    """The comparison can fail: a change left out of our side is caught."""
    left, right, log, _ = make_round(base, tmp_path, 7)
    conn = sqlite3.connect(right, isolation_level=None)
    conn.execute("UPDATE Artist SET Name = 'planted' WHERE ArtistId = 3")
    conn.close()
    changes = [c.as_dict() for c in diff_files(str(left), str(right), Options(store="db"), use_cache=False)]
    assert compare(left, right, changes).agree
    planted = [c for c in changes if c["path"] != "db.Artist[3].Name"]
    verdict = compare(left, right, planted)
    assert not verdict.agree and "planted" in verdict.explain()
