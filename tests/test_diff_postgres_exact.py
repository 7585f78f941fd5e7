"""The PostgreSQL data diff is exact where PostgreSQL lets values be equal yet print
differently, and finds rows without a primary key: unique keys holding NULL, case under a
nondeterministic collation, numeric's scale, -0, NaN, json against jsonb, composite and
retyped keys; a rewritten clone shows nothing. Against a real PostgreSQL 15."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.pg_pair import CI, pair, pg_server, run
from workbench.diff.render import change_line

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def server(docker_client):
    with pg_server(docker_client) as srv:
        yield srv


def facts(changes) -> list[tuple]:
    """What a user reads of each change, as ``--json`` gives it."""
    out = []
    for c in changes:
        d = json.loads(json.dumps(c.as_dict()))
        out.append((d["path"], d["kind"], json.dumps(d["left"], sort_keys=True),
                    json.dumps(d["right"], sort_keys=True), d.get("count")))
    return sorted(out)


def row(**values) -> str:
    return json.dumps(values, sort_keys=True)


UNIQUE = """
    CREATE TABLE uk (a int, b text, v text, UNIQUE (a, b));
    INSERT INTO uk VALUES (1, NULL, 'x'), (1, NULL, 'y'), (1, NULL, 'y'), (2, 'k', 'z'), (3, 'k', 'q');
    CREATE TABLE ui (id int UNIQUE, v text);
    INSERT INTO ui SELECT CASE WHEN g % 50 = 0 THEN NULL ELSE g END, 'v' || g FROM generate_series(1, 2000) g;
    CREATE TABLE two (id int UNIQUE, code text NOT NULL UNIQUE, v text);
    INSERT INTO two VALUES (1, 'a', 'p'), (NULL, 'b', 'q');
"""


def test_a_unique_key_finds_rows_and_rows_whose_key_holds_null_are_a_multiset(server):
    left, right = pair(server, "uniq", UNIQUE, """
        INSERT INTO uk VALUES (1, NULL, 'w');
        DELETE FROM uk WHERE ctid = (SELECT min(ctid) FROM uk WHERE v = 'y');
        UPDATE uk SET v = 'Z' WHERE a = 2;
        INSERT INTO uk VALUES (4, 'k', 'new');
        UPDATE uk SET b = NULL WHERE a = 3;
        UPDATE ui SET v = 'changed' WHERE id = 1234;
        UPDATE ui SET v = 'null key, changed' WHERE v = 'v100';
        INSERT INTO ui VALUES (NULL, 'v100');
        UPDATE two SET v = 'Q' WHERE code = 'b';
    """)
    changes, groups = run(left, right)
    assert facts(changes) == [
        ("db.two[\"b\"].v", "changed", '"q"', '"Q"', None),            # the NOT NULL unique key, not id
        ("db.ui", "added", "null", row(id=None, v="null key, changed"), 1),
        ("db.ui[1234].v", "changed", '"v1234"', '"changed"', None),
        ("db.uk", "added", "null", row(a=1, b=None, v="w"), 1),
        ("db.uk", "added", "null", row(a=3, b=None, v="q"), 1),
        ("db.uk", "removed", row(a=1, b=None, v="y"), "null", 1),
        ('db.uk[2,"k"].v', "changed", '"z"', '"Z"', None),
        ('db.uk[3,"k"]', "removed", row(a=3, b="k", v="q"), "null", None),
        ('db.uk[4,"k"]', "added", "null", row(a=4, b="k", v="new"), None),
    ]
    # no row whose key holds NULL is ever paired with another
    assert not [c for c in changes if c.kind == "changed" and None in (c.key or [])]
    assert groups["db.uk"].note == ("no primary key: rows found by the unique index uk_a_b_key, rows whose key "
                                    "holds NULL compared as a multiset")
    assert groups["db.two"].note == "no primary key: rows found by the unique index two_code_key"


def test_a_clone_rewritten_on_disk_shows_nothing(server):
    left, right = pair(server, "rewrite", UNIQUE + CI + """
        CREATE TABLE big (id int PRIMARY KEY, v text, n numeric);
        INSERT INTO big SELECT g, md5(g::text), g / 7.0 FROM generate_series(1, 5000) g;
        CREATE TABLE bag (a int, t text COLLATE ci);
        INSERT INTO bag VALUES (1, 'x'), (1, 'x'), (2, NULL), (3, 'Z'), (3, 'z');
        CREATE TABLE named (k text COLLATE ci PRIMARY KEY, v int);
        INSERT INTO named SELECT 'k' || g, g FROM generate_series(1, 700) g;
    """, """
        VACUUM FULL uk;
        CLUSTER ui USING ui_id_key;
        UPDATE big SET v = v;
        VACUUM FULL big;
        CREATE TABLE keep AS SELECT * FROM bag;
        DELETE FROM bag;
        INSERT INTO bag SELECT * FROM keep ORDER BY random();
        DROP TABLE keep;
        UPDATE named SET v = v WHERE v % 2 = 0;
        VACUUM FULL named;
    """)
    changes, groups = run(left, right)
    assert changes == []
    assert {groups[t].status for t in ("db.uk", "db.ui", "db.big", "db.bag", "db.named")} == {"same"}


def test_a_key_changed_under_rows_of_the_same_values_is_seen(server):
    left, right = pair(server, "renumber", """
        CREATE TABLE r (id int PRIMARY KEY, v text);
        INSERT INTO r SELECT g, 'same' FROM generate_series(1, 10) g;
        CREATE TABLE s (code text PRIMARY KEY, v text);
        INSERT INTO s SELECT 'c' || g, 'same' FROM generate_series(1, 10) g;
    """, "UPDATE r SET id = 11 WHERE id = 5; UPDATE s SET code = 'c99' WHERE code = 'c3'")
    changes, _ = run(left, right)
    assert sorted((c.path, c.kind) for c in changes) == [
        ("db.r[11]", "added"), ("db.r[5]", "removed"), ('db.s["c3"]', "removed"), ('db.s["c99"]', "added")]


def test_case_under_a_nondeterministic_collation_is_a_change(server):
    left, right = pair(server, "cases", CI + """
        CREATE TABLE n (k text COLLATE ci PRIMARY KEY, v text COLLATE ci);
        INSERT INTO n VALUES ('abc', 'x'), ('keep', 'Mixed');
        CREATE TABLE u (code varchar(10) COLLATE ci UNIQUE NOT NULL, v int);
        INSERT INTO u VALUES ('Ab', 1);
        CREATE TABLE bag (t text COLLATE ci);
        INSERT INTO bag VALUES ('one'), ('one');
        CREATE TABLE mix (k text COLLATE ci, b text, c text COLLATE "C", v int, PRIMARY KEY (k, b, c));
        INSERT INTO mix VALUES ('abc', 'x', 'y', 1), ('def', 'x', 'y', 2);
    """, """
        UPDATE mix SET k = 'Abc' WHERE v = 1;
        UPDATE mix SET v = 3 WHERE v = 2;
        UPDATE n SET k = 'ABC' WHERE k = 'abc';
        UPDATE n SET v = 'MIXED' WHERE k = 'keep';
        UPDATE u SET code = 'aB';
        UPDATE bag SET t = 'One' WHERE ctid = (SELECT min(ctid) FROM bag);
    """)
    # the premise: PostgreSQL itself calls them equal
    assert left.server.value("SELECT 'abc' = 'ABC' COLLATE ci AS same", left.db) is True
    changes, _ = run(left, right)
    # as in the SQLite diff under NOCASE: a key whose case changed is a row removed and a row added
    assert facts(changes) == sorted([
        ('db.n["ABC"]', "added", "null", row(k="ABC", v="x"), None),
        ('db.n["abc"]', "removed", row(k="abc", v="x"), "null", None),
        ('db.n["keep"].v', "changed", '"Mixed"', '"MIXED"', None),
        ('db.u["Ab"]', "removed", row(code="Ab", v=1), "null", None),
        ('db.u["aB"]', "added", "null", row(code="aB", v=1), None),
        ("db.bag", "added", "null", row(t="One"), 1),
        ("db.bag", "removed", row(t="one"), "null", 1),
        ('db.mix["Abc","x","y"]', "added", "null", row(k="Abc", b="x", c="y", v=1), None),
        ('db.mix["abc","x","y"]', "removed", row(k="abc", b="x", c="y", v=1), "null", None),
        ('db.mix["def","x","y"].v', "changed", "2", "3", None),
    ])


def test_numeric_scale_is_a_change_and_shown_exactly(server):
    left, right = pair(server, "scale", """
        CREATE TABLE m (id int PRIMARY KEY, x numeric, fixed numeric(12, 2));
        INSERT INTO m VALUES (1, 1, 1), (2, 2.0, 2), (3, 12345678901234567890.123, 3), (4, 0.5, 4);
        CREATE TABLE mk (k numeric PRIMARY KEY, v text);
        INSERT INTO mk VALUES (1, 'a'), (2.50, 'b');
    """, """
        UPDATE m SET x = 1.0 WHERE id = 1;
        UPDATE m SET x = 2.00 WHERE id = 2;
        UPDATE m SET x = 12345678901234567890.124 WHERE id = 3;
        UPDATE m SET fixed = 4.01 WHERE id = 4;
        UPDATE mk SET k = 1.0 WHERE k = 1;
        UPDATE mk SET k = 2.5 WHERE k = 2.5;
    """)
    assert left.server.value("SELECT 1::numeric = 1.0::numeric AS same", left.db) is True
    changes, _ = run(left, right)
    # a numeric is shown with its digits and scale as PostgreSQL prints it (a JSON string: JSON
    # numbers have no scale); as in the SQLite diff, a key whose scale changed is removed + added
    assert facts(changes) == sorted([
        ("db.m[1].x", "changed", '"1"', '"1.0"', None),
        ("db.m[2].x", "changed", '"2.0"', '"2.00"', None),
        ("db.m[3].x", "changed", '"12345678901234567890.123"', '"12345678901234567890.124"', None),
        ("db.m[4].fixed", "changed", '"4.00"', '"4.01"', None),
        ("db.mk[1.0]", "added", "null", row(k="1.0", v="a"), None),
        ("db.mk[1]", "removed", row(k="1", v="a"), "null", None),
        ("db.mk[2.50]", "removed", row(k="2.50", v="b"), "null", None),
        ("db.mk[2.5]", "added", "null", row(k="2.5", v="b"), None),
    ])
    by = {c.path: c for c in changes}
    assert (by["db.m[2].x"].left, by["db.m[2].x"].right) == (Decimal("2.0"), Decimal("2.00"))
    assert change_line(by["db.m[2].x"]) == "  ~ db.m[2].x  2.0 → 2.00"


def test_floats_nan_infinity_and_negative_zero(server):
    left, right = pair(server, "floats", """
        CREATE TABLE f (id int PRIMARY KEY, d float8, r real, n numeric);
        INSERT INTO f VALUES (1, 0, 0, 0), (2, 'NaN', 'NaN', 'NaN'), (3, 'Infinity', '-Infinity', 'Infinity'),
                             (4, 1e15, 1.5, 1e15), (5, 0.1, 0.1, 0.1), (6, 0.3, 0.3, 0.3);
    """, """
        UPDATE f SET d = '-0', r = '-0' WHERE id = 1;
        UPDATE f SET d = 'Infinity', n = '-Infinity' WHERE id = 2;
        UPDATE f SET r = 'NaN' WHERE id = 3;
        UPDATE f SET d = 1e15 + 1 WHERE id = 4;
        UPDATE f SET d = 0.1::float8 + 0.2::float8 WHERE id = 6;
    """)
    assert left.server.value("SELECT '-0'::float8 = 0::float8 AS same", left.db) is True
    # servers set to print floats with 15 digits (as before PostgreSQL 12) print 0.3 and
    # 0.30000000000000004 alike: the diff's own sessions print them exactly
    for side in (left, right):
        side.server.psql(f"ALTER DATABASE {side.db} SET extra_float_digits = 0")
    right.server.close()
    assert right.server.value("SELECT (0.1::float8 + 0.2::float8)::text AS v", right.db) == "0.3"
    changes, _ = run(left, right)
    assert facts(changes) == sorted([
        ("db.f[1].d", "changed", "0.0", "-0.0", None),
        ("db.f[1].r", "changed", "0.0", "-0.0", None),
        ("db.f[2].d", "changed", '"NaN"', '"Infinity"', None),
        ("db.f[2].n", "changed", '"NaN"', '"-Infinity"', None),
        ("db.f[3].r", "changed", '"-Infinity"', '"NaN"', None),
        ("db.f[4].d", "changed", "1000000000000000.0", "1000000000000001.0", None),
        ("db.f[6].d", "changed", "0.3", "0.30000000000000004", None),
    ])


def test_json_jsonb_and_arrays(server):
    left, right = pair(server, "docs", """
        CREATE TABLE d (id int PRIMARY KEY, j json, b jsonb, a int[], t text[]);
        INSERT INTO d VALUES (1, '{"a":1, "b":2}', '{"a":1, "b":2}', '{1,2}', '{x,y}'),
                             (2, '[1]', '[1.0]', '{1}', '{a}');
    """, """
        UPDATE d SET j = '{"b":2,"a":1}', b = '{"b":2,"a":1}' WHERE id = 1;
        UPDATE d SET j = '[1 ]', b = '[1.00]', a = '{1,NULL}', t = '{A}' WHERE id = 2;
    """)
    changes, _ = run(left, right)
    # jsonb is normalised by PostgreSQL (key order, spaces): d[1].b is not a change; json keeps its text
    assert facts(changes) == sorted([
        ("db.d[1].j", "changed", row(a=1, b=2), row(a=1, b=2), None),
        ("db.d[2].j", "changed", '"[1]"', '"[1 ]"', None),            # alike once parsed: shown as printed
        ("db.d[2].b", "changed", '"[1.0]"', '"[1.00]"', None),
        ("db.d[2].a", "changed", "[1]", "[1, null]", None),
        ("db.d[2].t", "changed", '["a"]', '["A"]', None),
    ])
    moved = next(c for c in changes if c.path == "db.d[1].j")
    assert list(moved.left) == ["a", "b"] and list(moved.right) == ["b", "a"]   # the order as written


def test_composite_and_retyped_keys(server):
    left, right = pair(server, "keys", """
        CREATE TABLE ck (a int, b text, v text, PRIMARY KEY (a, b));
        INSERT INTO ck VALUES (1, 'x', 'p'), (1, 'y', 'q'), (2, 'x', 'r');
        CREATE TABLE k (id int PRIMARY KEY, v text);
        INSERT INTO k VALUES (1, 'a'), (2, 'b');
        CREATE TABLE wide (id int PRIMARY KEY, v int);
        INSERT INTO wide VALUES (1, 7);
    """, """
        UPDATE ck SET b = 'z' WHERE a = 1 AND b = 'y';
        UPDATE ck SET v = 'R' WHERE a = 2;
        ALTER TABLE k ALTER COLUMN id TYPE text;
        ALTER TABLE wide ALTER COLUMN id TYPE bigint, ALTER COLUMN v TYPE text;
    """)
    changes, _ = run(left, right)
    assert facts(changes) == sorted([
        ('db.ck[1,"y"]', "removed", row(a=1, b="y", v="q"), "null", None),
        ('db.ck[1,"z"]', "added", "null", row(a=1, b="z", v="q"), None),
        ('db.ck[2,"x"].v', "changed", '"r"', '"R"', None),
        ("db.k.id", "changed", '"integer NOT NULL"', '"text NOT NULL"', None),
        ("db.k[1]", "removed", row(id=1, v="a"), "null", None),
        ("db.k[2]", "removed", row(id=2, v="b"), "null", None),
        ('db.k["1"]', "added", "null", row(id="1", v="a"), None),
        ('db.k["2"]', "added", "null", row(id="2", v="b"), None),
        # integer → bigint keeps every key; integer → text changes each value's kind
        ("db.wide.id", "changed", '"integer NOT NULL"', '"bigint NOT NULL"', None),
        ("db.wide.v", "changed", '"integer"', '"text"', None),
        ("db.wide[1].v", "changed", "7", '"7"', None),
    ])


def test_a_key_with_a_scrubbed_column_finds_no_row(server):
    """The clone's scrubbed values differ from prod's on every row: a key holding one would
    report each row removed and added. Another key is taken, or none."""
    left, right = pair(server, "scrubkey", """
        CREATE TABLE people (email text NOT NULL UNIQUE, id int UNIQUE, name text);
        INSERT INTO people VALUES ('ann@mail.test', 1, 'Ann'), ('bob@mail.test', 2, 'Bob');
        CREATE TABLE logins (email text PRIMARY KEY, seen int);
        INSERT INTO logins VALUES ('ann@mail.test', 1), ('bob@mail.test', 2);
    """, """
        UPDATE people SET email = md5(email) || '@example.invalid';
        UPDATE logins SET email = md5(email) || '@example.invalid';
        UPDATE people SET name = 'Bobby' WHERE id = 2;
        UPDATE logins SET seen = 3 WHERE seen = 2;
    """)
    changes, groups = run(left, right, scrubbed={"people": {"email"}, "logins": {"email"}})
    assert sorted((c.path, c.kind, c.intent) for c in changes) == [
        ("db.logins", "added", None), ("db.logins", "removed", None), ("db.logins.email", "changed", "scrub"),
        ("db.people.email", "changed", "scrub"), ("db.people[2].name", "changed", None)]
    shown = {c.kind: c for c in changes if c.path == "db.logins"}
    assert (shown["removed"].left, shown["added"].right) == ({"seen": 2}, {"seen": 3})   # no e-mail shown
    assert groups["db.people"].note == ("no primary key: rows found by the unique index people_id_key, rows whose "
                                        "key holds NULL compared as a multiset")
    assert groups["db.logins"].note == "its keys hold a scrubbed column: rows compared as a multiset"


def test_the_two_servers_settings_change_no_value(server):
    """A clone restored from a dump may print times in another zone, intervals and bytea
    in another style: the same values are not changes."""
    left, right = pair(server, "settings", """
        CREATE TABLE t (id int PRIMARY KEY, at timestamptz, d date, span interval, raw bytea, f float8);
        INSERT INTO t VALUES (1, '2024-03-01 12:00:00+00', '2024-03-01', '1 day 02:00:00', '\\x00ff', 0.3),
                             (2, '2024-03-02 12:00:00+00', '2024-03-02', '3 hours', '\\x41', 1);
    """, "UPDATE t SET at = at + interval '1 second' WHERE id = 2")
    for side, tz, style, dates, raw in ((left, "Europe/Paris", "sql_standard", "SQL, DMY", "escape"),
                                        (right, "America/New_York", "iso_8601", "German", "hex")):
        side.server.psql(f"ALTER DATABASE {side.db} SET TimeZone = '{tz}'; ALTER DATABASE {side.db} SET "
                         f"IntervalStyle = '{style}'; ALTER DATABASE {side.db} SET DateStyle = '{dates}'; "
                         f"ALTER DATABASE {side.db} SET bytea_output = '{raw}'")
    server.close()
    assert {left.server.value("SELECT at::text AS v FROM t WHERE id = 1", db) for db in (left.db, right.db)} == {
        "01/03/2024 13:00:00 CET", "01.03.2024 07:00:00 EST"}
    changes, _ = run(left, right)
    assert [(c.path, c.left, c.right) for c in changes] == [
        ("db.t[2].at", "2024-03-02T12:00:00+00:00", "2024-03-02T12:00:01+00:00")]


def test_names_like_the_diffs_own_words(server):
    """Schemas, tables and columns named like the aliases of the diff's queries, or quoted."""
    s = '"Sales ""EU"""'
    left, right = pair(server, "names", f"""
        CREATE SCHEMA {s};
        CREATE TABLE {s}."odd 'table'" (h int, b text, n text, c0 int, "Select" text, PRIMARY KEY (b, h));
        INSERT INTO {s}."odd 'table'" VALUES (1, 'a', 'n1', 5, 's'), (2, 'b', 'n2', 6, 't');
        CREATE TABLE {s}.ints (h int PRIMARY KEY, b text, n int);
        INSERT INTO {s}.ints SELECT g, 'x', g FROM generate_series(1, 1000) g;
        CREATE TABLE {s}.uniq (t0 int UNIQUE, j0 text, n int);
        INSERT INTO {s}.uniq VALUES (1, 'a', 1), (NULL, 'b', 1), (NULL, 'b', 1);
    """, f"""
        UPDATE {s}."odd 'table'" SET "Select" = 'S', c0 = 7 WHERE h = 1;
        UPDATE {s}."odd 'table'" SET h = 3 WHERE h = 2;
        UPDATE {s}.ints SET b = 'y' WHERE h = 500;
        UPDATE {s}.uniq SET j0 = 'A' WHERE t0 = 1;
        UPDATE {s}.uniq SET j0 = 'B' WHERE ctid = (SELECT min(ctid) FROM {s}.uniq WHERE t0 IS NULL);
    """)
    changes, _ = run(left, right)
    t = 'db.Sales "EU".'
    assert sorted((c.path, c.kind, c.count) for c in changes) == [
        (f"{t}ints[500].b", "changed", None),
        (f"{t}odd 'table'[\"a\",1].Select", "changed", None),
        (f"{t}odd 'table'[\"a\",1].c0", "changed", None),
        (f"{t}odd 'table'[\"b\",2]", "removed", None),
        (f"{t}odd 'table'[\"b\",3]", "added", None),
        (f"{t}uniq", "added", 1),
        (f"{t}uniq", "removed", 1),
        (f"{t}uniq[1].j0", "changed", None),
    ]
