"""The SQLite diff is exact on every table SQLite allows: keys holding NULL, text that is
not UTF-8, case under NOCASE, storage classes, retyped keys; and its text reads once per table."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from tests.conftest import run_cli
from tests.test_diff_sqlite import chinook, execute, run
from workbench.diff import cellwalk
from workbench.diff.model import DiffReport
from workbench.diff.render import change_line, render


def pair(tmp_path: Path, setup: str, change: str) -> tuple[Path, Path]:
    """A file made by ``setup``, and a copy of it changed by ``change``."""
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    sqlite3.connect(a, isolation_level=None).executescript(setup).connection.close()
    shutil.copyfile(a, b)
    sqlite3.connect(b, isolation_level=None).executescript(change).connection.close()
    return a, b


def facts(changes) -> list[tuple]:
    return sorted((c.path, c.kind, json.dumps(c.left, sort_keys=True), json.dumps(c.right, sort_keys=True), c.count)
                  for c in changes)


NULL_KEYS = """
    CREATE TABLE np (a INTEGER, b TEXT, v TEXT, PRIMARY KEY (a, b));
    INSERT INTO np VALUES (1, NULL, 'x'), (1, NULL, 'y'), (1, NULL, 'y'), (2, 'k', 'z');
    CREATE TABLE d (id INTEGER PRIMARY KEY DESC, v TEXT);
    INSERT INTO d VALUES (NULL, 'a'), (NULL, 'b'), (5, 'e');
"""


def test_rows_whose_key_holds_null_are_compared_as_a_multiset(tmp_path):
    a, b = pair(tmp_path, NULL_KEYS, """
        INSERT INTO np VALUES (1, NULL, 'w');
        DELETE FROM np WHERE rowid = (SELECT max(rowid) FROM np WHERE v = 'y');
        UPDATE np SET v = 'Z' WHERE a = 2;
        INSERT INTO d VALUES (NULL, 'c');
    """)
    changes, _ = run(a, b)
    assert facts(changes) == [
        ("db.d", "added", "null", json.dumps({"id": None, "v": "c"}), 1),
        ("db.np", "added", "null", json.dumps({"a": 1, "b": None, "v": "w"}), 1),
        ("db.np", "removed", json.dumps({"a": 1, "b": None, "v": "y"}), "null", 1),
        ('db.np[2,"k"].v', "changed", '"z"', '"Z"', None),
    ]
    assert not [c for c in changes if c.kind == "changed" and c.key and None in c.key]


def test_a_vacuumed_clone_shows_nothing(tmp_path):
    a, b = pair(tmp_path, """
        CREATE TABLE filler (id INTEGER PRIMARY KEY, pad TEXT);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
        INSERT INTO filler SELECT i, hex(randomblob(200)) FROM n;
    """ + NULL_KEYS + """
        CREATE TABLE log (at TEXT, msg TEXT);
        INSERT INTO log VALUES ('1', 'x'), ('1', 'x'), ('2', NULL);
        DELETE FROM filler WHERE id % 3 = 0;
    """, "VACUUM")
    changes, groups = run(a, b)
    assert changes == []
    # they moved: their cells are compared by bytes (told equal), or without the library row by row
    moved = "same" if cellwalk.available() else "compared"
    assert {groups[n].status for n in ("db.np", "db.d", "db.log")} == {moved}
    c, d = chinook(tmp_path, "c.db"), chinook(tmp_path, "d.db")
    execute(d, "VACUUM")
    assert run(c, d)[0] == []


def test_text_that_is_not_utf8_is_shown_escaped_and_the_diff_goes_on(tmp_path):
    a, b = pair(tmp_path, """
        CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
        INSERT INTO t VALUES (1, 'a'), (2, 'b\\c');
        CREATE TABLE g (id INTEGER PRIMARY KEY, raw BLOB, txt TEXT GENERATED ALWAYS AS (CAST(raw AS TEXT)));
        INSERT INTO g (id, raw) VALUES (1, x'41');
        CREATE TABLE z (id INTEGER PRIMARY KEY);
    """, """
        UPDATE t SET v = CAST(x'41ff42' AS TEXT) WHERE id = 1;
        UPDATE t SET v = CAST(x'625c63fe' AS TEXT) WHERE id = 2;
        INSERT INTO t VALUES (3, CAST(x'c3' AS TEXT));
        UPDATE g SET raw = x'41ff';
        INSERT INTO z VALUES (1);
    """)
    changes, _ = run(a, b)
    by = {c.path: c for c in changes}
    assert by["db.t[1].v"].right == "A\\xffB"
    assert by["db.t[2].v"].right == "b\\\\c\\xfe"          # a backslash of the text doubled: no ambiguity
    assert by["db.t[3]"].right == {"id": 3, "v": "\\xc3"}
    assert by["db.g[1].txt"].right == "A\\xff"
    assert "db.z[1]" in by                                  # the tables after it were compared too
    assert change_line(by["db.t[1].v"]) == "  ~ db.t[1].v  'a' → 'A\\xffB' (not UTF-8)"
    json.dumps([c.as_dict() for c in changes], ensure_ascii=False).encode()


def test_case_storage_class_and_retyped_keys_are_changes(tmp_path):
    a, b = pair(tmp_path, """
        CREATE TABLE n (k TEXT PRIMARY KEY COLLATE NOCASE, v INTEGER);
        INSERT INTO n VALUES ('abc', 1), ('keep', 2);
        CREATE TABLE u (id INTEGER PRIMARY KEY, v, w NUMERIC, s TEXT);
        INSERT INTO u VALUES (1, 1, 1, 'x'), (2, '7', 2, 'y');
        CREATE TABLE pk2 (a, b, v, PRIMARY KEY (a, b)) WITHOUT ROWID;
        INSERT INTO pk2 VALUES (1, 'x', 'v');
        CREATE TABLE k (id INTEGER PRIMARY KEY, v TEXT);
        INSERT INTO k VALUES (1, 'a');
    """, """
        UPDATE n SET k = 'ABC' WHERE k = 'abc';
        UPDATE u SET v = 1.0 WHERE id = 1;
        UPDATE u SET v = 7 WHERE id = 2;
        UPDATE u SET w = 1.0, s = 'x' WHERE id = 1;
        UPDATE pk2 SET a = 1.0;
        CREATE TABLE k2 (id TEXT PRIMARY KEY, v TEXT);
        INSERT INTO k2 SELECT id, v FROM k;
        DROP TABLE k;
        ALTER TABLE k2 RENAME TO k;
    """)
    changes, _ = run(a, b)
    assert facts(changes) == sorted([
        ("db.k.id", "changed", '"INTEGER PRIMARY KEY"', '"TEXT PRIMARY KEY"', None),
        ("db.k[1]", "removed", json.dumps({"id": 1, "v": "a"}), "null", None),
        ('db.k["1"]', "added", "null", json.dumps({"id": "1", "v": "a"}), None),
        ('db.n["abc"]', "removed", json.dumps({"k": "abc", "v": 1}), "null", None),
        ('db.n["ABC"]', "added", "null", json.dumps({"k": "ABC", "v": 1}), None),
        ('db.pk2[1,"x"]', "removed", json.dumps({"a": 1, "b": "x", "v": "v"}), "null", None),
        ('db.pk2[1.0,"x"]', "added", "null", json.dumps({"a": 1.0, "b": "x", "v": "v"}), None),
        ("db.u[1].v", "changed", "1", "1.0", None),
        ("db.u[2].v", "changed", '"7"', "7", None),
    ])


def test_a_table_without_key_counts_storage_classes(tmp_path):
    a, b = pair(tmp_path, "CREATE TABLE log (n, t TEXT); INSERT INTO log VALUES (1, 'a'), (2, 'b');",
                "UPDATE log SET n = 1.0 WHERE n = 1")
    changes, _ = run(a, b)
    assert facts(changes) == [
        ("db.log", "added", "null", json.dumps({"n": 1.0, "t": "a"}), 1),
        ("db.log", "removed", json.dumps({"n": 1, "t": "a"}), "null", 1)]


def test_the_text_heads_each_table_once_and_names_indexes(tmp_path):
    a, b = pair(tmp_path, """
        CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT);
        INSERT INTO t VALUES (1, 'a'), (2, 'b');
        CREATE TABLE other (id INTEGER PRIMARY KEY);
    """, """
        CREATE INDEX t_name ON t (name);
        ALTER TABLE t ADD COLUMN extra TEXT;
        UPDATE t SET name = 'B' WHERE id = 2;
        CREATE INDEX other_id ON other (id);
        INSERT INTO other VALUES (7);
    """)
    changes, by_name = run(a, b)
    lines = render(DiffReport(left="prod", right="b1", data=changes, groups=list(by_name.values())))
    heads = [i for i, line in enumerate(lines) if line.startswith("  db.") and line.split()[0].endswith(":")]
    assert [lines[i].split()[0] for i in heads] == ["db.t:", "db.other:"]
    assert [line.split()[1] for line in lines[heads[0] + 1:heads[1]]] == [
        "db.t.extra", "db.t.indexes.t_name", "db.t[2].name"]      # schema and rows under one header
    assert [line.split()[1] for line in lines[heads[1] + 1:]] == ["db.other.indexes.other_id", "db.other[7]"]
    assert "indexs" not in "\n".join(lines)


def test_the_command_line_survives_text_that_is_not_utf8(shop):
    r = run_cli("fork", "prod", "b1", cwd=shop)
    assert r.returncode == 0, r.stderr
    db = sqlite3.connect(shop / ".repro" / "data" / "b1" / "db" / "shop.db", isolation_level=None)
    db.execute("UPDATE orders SET status = CAST(x'70616964ff' AS TEXT) WHERE id = 3")
    db.close()
    r = run_cli("diff", "prod", "b1", "--json", "--only-unexpected", cwd=shop)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)["data"]
    assert [(c["path"], c["left"], c["right"]) for c in data] == [("db.orders[3].status", "paid", "paid\\xff")]
    text = run_cli("diff", "prod", "b1", "--only-unexpected", cwd=shop)
    assert text.returncode == 0 and "'paid\\xff' (not UTF-8)" in text.stdout
