"""The SQLite diff on real files: Chinook copies changed in known ways, and odd tables."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from workbench.diff import sqlitepages
from workbench.diff.model import GroupSummary
from workbench.diff.render import change_line
from workbench.diff.sqlite import Options, diff_files
from workbench.secrets import SecretPolicy

CHINOOK = Path(__file__).parent / "data" / "Chinook_Sqlite.sqlite"


def chinook(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copyfile(CHINOOK, dest)
    return dest


def run(left: Path, right: Path, **kw):
    groups: list[GroupSummary] = []
    opts = Options(store=kw.pop("store", "db"), **kw)
    changes = list(diff_files(str(left), str(right), opts, groups, use_cache=False))
    return changes, {g.name: g for g in groups}


def execute(path: Path, *sql: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for s in sql:
        conn.execute(s)
    conn.close()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_copy_diffs_clean_without_reading_rows(tmp_path):
    a, b = chinook(tmp_path, "a.db"), chinook(tmp_path, "b.db")
    changes, groups = run(a, b)
    assert changes == []
    assert groups and all(g.status == "same" for g in groups.values())


def test_changed_rows_in_several_tables_exactly(tmp_path):
    a, b = chinook(tmp_path, "a.db"), chinook(tmp_path, "b.db")
    before = sha(a)
    execute(b,
            "UPDATE Invoice SET Total = 99.99 WHERE InvoiceId = 7",
            "UPDATE Track SET Name = 'Ça plane pour moi — 東京' WHERE TrackId = 12",
            "UPDATE Customer SET Company = NULL, Fax = '' WHERE CustomerId = 1",
            "DELETE FROM InvoiceLine WHERE InvoiceLineId = 100",
            "INSERT INTO Genre (GenreId, Name) VALUES (26, 'Zouk')")
    changes, groups = run(a, b)
    got = {(c.path, c.kind) for c in changes}
    assert got == {("db.Invoice[7].Total", "changed"), ("db.Track[12].Name", "changed"),
                   ("db.Customer[1].Company", "changed"), ("db.Customer[1].Fax", "changed"),
                   ("db.InvoiceLine[100]", "removed"), ("db.Genre[26]", "added")}
    by = {c.path: c for c in changes}
    assert by["db.Invoice[7].Total"].right == 99.99 and by["db.Invoice[7].Total"].key == [7]
    assert by["db.Track[12].Name"].right == "Ça plane pour moi — 東京"
    assert by["db.Customer[1].Company"].right is None and by["db.Customer[1].Company"].left is not None
    assert by["db.Customer[1].Fax"].right == ""                       # NULL is not ''
    assert by["db.Genre[26]"].right == {"GenreId": 26, "Name": "Zouk"}
    assert by["db.InvoiceLine[100]"].left["InvoiceLineId"] == 100
    # tables nobody wrote were decided from their pages, and the others read only some ranges
    assert groups["db.Album"].status == "same" and groups["db.Artist"].status == "same"
    assert "range" in (groups["db.Track"].note or "")
    # the JSON keeps non-ASCII text intact, and prod's file was not touched
    text = json.dumps([c.as_dict() for c in changes], ensure_ascii=False)
    assert "東京" in text
    assert sha(a) == before


def test_composite_primary_key(tmp_path):
    a, b = chinook(tmp_path, "a.db"), chinook(tmp_path, "b.db")
    execute(b, "DELETE FROM PlaylistTrack WHERE PlaylistId = 1 AND TrackId = 3402",
            "INSERT INTO PlaylistTrack VALUES (18, 1)")
    changes, _ = run(a, b)
    assert {(c.path, c.kind) for c in changes} == {("db.PlaylistTrack[1,3402]", "removed"),
                                                   ("db.PlaylistTrack[18,1]", "added")}
    assert next(c for c in changes if c.kind == "added").key == [18, 1]


def test_table_without_primary_key_is_a_multiset(tmp_path):
    a = tmp_path / "a.db"
    execute(a, "CREATE TABLE log (at TEXT, msg TEXT)",
            "INSERT INTO log VALUES ('1', 'start'), ('2', 'tick'), ('2', 'tick'), ('3', 'stop')")
    b = tmp_path / "b.db"
    shutil.copyfile(a, b)
    execute(b, "INSERT INTO log VALUES ('2', 'tick')", "DELETE FROM log WHERE msg = 'stop'")
    changes, _ = run(a, b)
    assert sorted((c.kind, c.count, json.dumps(c.left or c.right)) for c in changes) == [
        ("added", 1, json.dumps({"at": "2", "msg": "tick"})),
        ("removed", 1, json.dumps({"at": "3", "msg": "stop"}))]
    assert all(c.key is None and c.table == "log" for c in changes)


def test_without_rowid_null_vs_empty_blob_and_case(tmp_path):
    a = tmp_path / "a.db"
    execute(a, "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT COLLATE NOCASE, data BLOB) WITHOUT ROWID",
            "INSERT INTO kv VALUES ('a', NULL, x'00ff'), ('b', '', NULL), ('c', 'Paris', zeroblob(5000))",
            "CREATE TABLE same (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID",
            "INSERT INTO same VALUES ('x', 'y')")
    b = tmp_path / "b.db"
    shutil.copyfile(a, b)
    execute(b, "UPDATE kv SET v = '' WHERE k = 'a'", "UPDATE kv SET v = NULL WHERE k = 'b'",
            "UPDATE kv SET v = 'PARIS', data = randomblob(5000) WHERE k = 'c'")
    changes, groups = run(a, b)
    by = {c.path: c for c in changes}
    assert set(by) == {'db.kv["a"].v', 'db.kv["b"].v', 'db.kv["c"].v', 'db.kv["c"].data'}
    assert (by['db.kv["a"].v'].left, by['db.kv["a"].v'].right) == (None, "")
    assert (by['db.kv["b"].v'].left, by['db.kv["b"].v'].right) == ("", None)
    assert by['db.kv["c"].v'].right == "PARIS"           # NOCASE does not hide a change of case
    blob = by['db.kv["c"].data'].as_dict()
    assert blob["left"].startswith("x'0000") and "(5000 bytes)" in blob["right"]
    assert groups["db.same"].status == "same"
    assert "x'" in change_line(by['db.kv["c"].data'])


def test_schema_changes(tmp_path):
    a = tmp_path / "a.db"
    execute(a, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, age INTEGER, gone TEXT)",
            "CREATE TABLE old (id INTEGER PRIMARY KEY)", "CREATE INDEX t_name ON t(name)",
            "INSERT INTO t VALUES (1, 'a', 3, 'x')")
    b = tmp_path / "b.db"
    execute(b, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, age TEXT, extra REAL)",
            "CREATE TABLE new (id INTEGER PRIMARY KEY)", "CREATE INDEX t_age ON t(age)",
            "INSERT INTO t VALUES (1, 'a', 3, 1.5)")
    changes, _ = run(a, b)
    schema = {(c.path, c.kind) for c in changes if c.schema}
    assert schema == {("db.old", "removed"), ("db.new", "added"), ("db.t.age", "changed"),
                      ("db.t.gone", "removed"), ("db.t.extra", "added"), ("db.t.indexes.t_name", "removed"),
                      ("db.t.indexes.t_age", "added")}
    age = next(c for c in changes if c.path == "db.t.age")
    assert (age.left, age.right) == ("INTEGER", "TEXT")
    # rows are compared on the columns both sides have: 3 vs '3' under different affinities
    assert not [c for c in changes if not c.schema and c.column in ("name",)]


def test_scrubbed_columns_are_one_entry_each_unless_asked(tmp_path):
    a, b = chinook(tmp_path, "a.db"), chinook(tmp_path, "b.db")
    execute(b, "UPDATE Customer SET Email = 'user' || CustomerId || '@example.invalid', Phone = NULL",
            "UPDATE Customer SET City = 'Lyon' WHERE CustomerId = 5")
    scrub = {"customer": {"email", "phone"}}
    changes, _ = run(a, b, scrubbed=scrub)
    assert sorted((c.path, c.intent) for c in changes) == [
        ("db.Customer.Email", "scrub"), ("db.Customer.Phone", "scrub"), ("db.Customer[5].City", None)]
    everything, _ = run(a, b, scrubbed=scrub, include_scrubbed=True)
    emails = [c for c in everything if c.column == "Email"]
    assert len(emails) == 59 and all(c.intent == "scrub" for c in emails)


def test_limit_streams_the_first_and_counts_the_rest(tmp_path):
    a, b = chinook(tmp_path, "a.db"), chinook(tmp_path, "b.db")
    execute(b, "UPDATE Track SET Milliseconds = Milliseconds + 1 WHERE TrackId <= 500")
    changes, groups = run(a, b, limit=10)
    assert len(changes) == 10
    assert groups["db.Track"].shown == 10 and groups["db.Track"].more == 490 and groups["db.Track"].changed == 500


def test_secret_columns_are_masked(tmp_path):
    a = tmp_path / "a.db"
    execute(a, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, password TEXT, api_token TEXT, url TEXT)",
            "INSERT INTO users VALUES (1, 'ann', 'hunter2-old', 'tok-old-123', 'postgres://u:pw-old-9@h/db')")
    b = tmp_path / "b.db"
    shutil.copyfile(a, b)
    execute(b, "UPDATE users SET password = 'hunter2-new', api_token = 'tok-new-456', url = 'postgres://u:pw-new-9@h/db'",
            "INSERT INTO users VALUES (2, 'bob', 'sekrit-pass', 'tok-bob-789', NULL)")
    policy = SecretPolicy()
    from workbench.diff.values import Shower
    changes, _ = run(a, b, shower=Shower(policy))
    out = json.dumps([c.as_dict() for c in changes]) + "\n".join(change_line(c) for c in changes)
    for raw in ("hunter2", "tok-old", "tok-new", "pw-old-9", "pw-new-9", "sekrit-pass", "tok-bob"):
        assert raw not in out
    pw = next(c for c in changes if c.column == "password")
    assert pw.masked and pw.left == policy.tag("hunter2-old") and pw.right.startswith("<secret:")
    assert next(c for c in changes if c.kind == "added").masked


def test_wal_frames_are_read_and_the_writer_is_not_blocked(tmp_path):
    a, b = chinook(tmp_path, "a.db"), chinook(tmp_path, "b.db")
    writer = sqlite3.connect(b, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("UPDATE Artist SET Name = 'AC/DC (live)' WHERE ArtistId = 1")
    assert Path(f"{b}-wal").stat().st_size > 0
    try:
        changes, groups = run(a, b)
        assert [(c.path, c.right) for c in changes] == [("db.Artist[1].Name", "AC/DC (live)")]
        assert groups["db.Album"].status == "same"
        writer.execute("UPDATE Artist SET Name = 'again' WHERE ArtistId = 2")   # readers never block it
        changes, _ = run(a, b)
        assert {c.path for c in changes} == {"db.Artist[1].Name", "db.Artist[2].Name"}
    finally:
        writer.close()


def test_big_rows_changed_only_in_their_overflow_pages(tmp_path):
    a = tmp_path / "a.db"
    big = "x" * 20000
    execute(a, "CREATE TABLE doc (id INTEGER PRIMARY KEY, body TEXT)",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50) "
            f"INSERT INTO doc SELECT i, '{big}' FROM n")
    b = tmp_path / "b.db"
    shutil.copyfile(a, b)
    execute(b, f"UPDATE doc SET body = '{big[:-1]}y' WHERE id = 20")   # same length: only the last page moves
    changes, _ = run(a, b)
    assert [c.path for c in changes] == ["db.doc[20].body"]


def test_a_rebuilt_file_with_another_layout_diffs_the_same(tmp_path):
    a, b = chinook(tmp_path, "a.db"), chinook(tmp_path, "b.db")
    execute(b, "DELETE FROM InvoiceLine WHERE InvoiceLineId % 7 = 0", "VACUUM",
            "UPDATE Album SET Title = 'T' WHERE AlbumId = 3")
    changes, groups = run(a, b)
    removed = [c for c in changes if c.table == "InvoiceLine"]
    assert len(removed) == 2240 // 7 and all(c.kind == "removed" for c in removed)
    assert [c.path for c in changes if c.table == "Album"] == ["db.Album[3].Title"]


@pytest.mark.parametrize("seed", range(6))
def test_page_shortcut_agrees_with_a_plain_comparison(tmp_path, seed):
    """Random edits on a copy: the page-narrowed diff equals a naive Python comparison."""
    rng = random.Random(seed)
    a = tmp_path / "a.db"
    conn = sqlite3.connect(a)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT UNIQUE, v INTEGER, pad TEXT)")
    conn.execute("CREATE TABLE p (x INTEGER, y TEXT, z BLOB, PRIMARY KEY (x, y))")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)",
                     [(i, f"k{i}", rng.randint(0, 9), "p" * rng.randint(0, 300)) for i in range(3000)])
    conn.executemany("INSERT INTO p VALUES (?, ?, ?)", [(i % 50, f"y{i}", bytes([i % 256]) * (i % 40))
                                                        for i in range(2000)])
    conn.commit()
    conn.close()
    b = tmp_path / "b.db"
    shutil.copyfile(a, b)
    conn = sqlite3.connect(b)
    for _ in range(rng.randint(1, 40)):
        op = rng.random()
        i = rng.randint(0, 3500)
        if op < 0.4:
            conn.execute("UPDATE t SET v = v + 1, pad = ? WHERE id = ?", ("q" * rng.randint(0, 900), i))
        elif op < 0.6:
            conn.execute("DELETE FROM t WHERE id = ?", (i,))
        elif op < 0.8:
            conn.execute("INSERT OR REPLACE INTO t VALUES (?, ?, ?, ?)", (i + 5000, f"n{i}", 1, "z" * 2000))
        else:
            conn.execute("UPDATE p SET z = ? WHERE x = ?", (b"\x01" * rng.randint(0, 60), i % 50))
    conn.commit()
    conn.close()
    changes, _ = run(a, b)
    got = sorted((c.path, c.kind) for c in changes)
    assert got == naive(a, b)


def naive(a: Path, b: Path) -> list[tuple[str, str]]:
    out = []
    for table, pk in (("t", ["id"]), ("p", ["x", "y"])):
        rows = []
        for path in (a, b):
            conn = sqlite3.connect(path)
            cur = conn.execute(f"SELECT * FROM {table}")
            cols = [d[0] for d in cur.description]
            rows.append({tuple(r[cols.index(k)] for k in pk): dict(zip(cols, r, strict=True)) for r in cur})
            conn.close()
        left, right = rows
        for key in set(left) | set(right):
            ktext = ",".join(json.dumps(k) if isinstance(k, str) else str(k) for k in key)
            if key not in right:
                out.append((f"db.{table}[{ktext}]", "removed"))
            elif key not in left:
                out.append((f"db.{table}[{ktext}]", "added"))
            else:
                out += [(f"db.{table}[{ktext}].{c}", "changed") for c in left[key] if left[key][c] != right[key][c]]
    return sorted(out)


def test_store_token_moves_with_every_commit_and_only_then(tmp_path):
    a = chinook(tmp_path, "a.db")
    t0 = sqlitepages.store_token(str(a))
    assert sqlitepages.store_token(str(a)) == t0
    conn = sqlite3.connect(a, isolation_level=None)
    conn.execute("SELECT count(*) FROM Track").fetchone()
    assert sqlitepages.store_token(str(a)) == t0          # reading is not a change
    conn.execute("UPDATE Genre SET Name = 'x' WHERE GenreId = 1")
    t1 = sqlitepages.store_token(str(a))
    assert t1 != t0
    conn.execute("PRAGMA journal_mode=WAL")
    t2 = sqlitepages.store_token(str(a))
    conn.execute("UPDATE Genre SET Name = 'y' WHERE GenreId = 1")
    t3 = sqlitepages.store_token(str(a))
    conn.execute("UPDATE Genre SET Name = 'z' WHERE GenreId = 1")   # same size: the wal-index still moves
    assert len({t1, t2, t3, sqlitepages.store_token(str(a))}) == 4
    conn.close()


def test_the_cache_answers_until_a_file_moves(tmp_path):
    a, b = chinook(tmp_path, "a.db"), chinook(tmp_path, "b.db")
    execute(b, "UPDATE Genre SET Name = 'x' WHERE GenreId = 1")
    opts = Options(store="db")
    first = list(diff_files(str(a), str(b), opts))
    groups: list[GroupSummary] = []
    again = list(diff_files(str(a), str(b), opts, groups))
    assert [c.path for c in again] == [c.path for c in first] and any(g.status == "cached" for g in groups)
    execute(b, "UPDATE Genre SET Name = 'y' WHERE GenreId = 2")
    assert len(list(diff_files(str(a), str(b), opts))) == 2


def test_command_line_entry(tmp_path, capsys):
    from workbench.diff.sqlite import main
    a, b = chinook(tmp_path, "a.db"), chinook(tmp_path, "b.db")
    execute(b, "UPDATE Genre SET Name = 'Rock & Roll' WHERE GenreId = 1")
    assert main([str(a), str(b), "--json"]) == 0
    line = json.loads(capsys.readouterr().out.splitlines()[0])
    assert line["path"] == "db.Genre[1].Name" and line["right"] == "Rock & Roll"
