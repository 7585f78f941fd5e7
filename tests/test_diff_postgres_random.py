"""The PostgreSQL data diff against a full comparison, fact by fact, over seeded random changes.

The oracle reads both sides' tables whole, each value as its type prints it (``::text``),
and compares them in Python: rows found by the key the table's definition gives (below,
``Table.key``), rows whose key holds NULL and rows of a table without a key counted as
multisets. Its facts are the differ's, in a form both can say:

    ("changed", table, key, column, old, new)     a value of a row both sides have
    ("removed" | "added", table, key, row)         a row found by its key, on one side only
    ("multiset", table, row, n)                    n more copies on the right (n < 0: fewer)

Differences of representation set aside (each is a ``norm`` case): a numeric is a string
of its digits on both sides (JSON has no scale); a float is compared by its value with
its sign (``-0``), NaN and the infinities as printed; an int[] is a list; a jsonb document
is compared parsed, its numbers by value (the differ shows a document parsed, and the
text PostgreSQL printed only where two documents would look alike). Every other
disagreement fails with the seed and the statements that led to it.

The changes land mostly on the clone's database, some on prod's (prod moves on after a
fork), in chunks of rounds that build on each other; half the chunks run the differ as it
runs against PostgreSQL 13 and older (row hashes of the row's text, no ``hash_record``).
``REPRO_PG_DIFF_SEED`` picks other seeds.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from tests.pg_pair import CI, copy_database, pg_server
from workbench.diff.postgres_rows import Side, diff_databases
from workbench.psql import PgServer, qi

pytestmark = pytest.mark.docker

SEED = int(os.environ.get("REPRO_PG_DIFF_SEED", "0"))
CHUNKS = 6
ROUNDS = 12              # rounds per chunk, each a batch of changes then a diff

Fact = tuple[Any, ...]


@dataclass
class Table:
    name: str
    columns: dict[str, str]     # name -> kind: int, numeric, float, text, jsonb, intarr
    key: list[str]              # what finds a row ([]: nothing, a multiset)
    create: str
    rows: int = 40              # about as many rows as it starts with


TABLES = [
    Table("uk", {"a": "int", "b": "text", "v": "numeric", "w": "float"}, ["a", "b"],
          "CREATE TABLE uk (a int, b text, v numeric, w float8, UNIQUE (a, b));"
          "INSERT INTO uk SELECT g % 7, CASE WHEN g % 3 = 0 THEN NULL ELSE 'b' || (g / 7) END, g / 4.0, g / 3.0 "
          "FROM generate_series(1, 60) g;"),
    Table("ui", {"id": "int", "v": "text", "n": "numeric"}, ["id"],
          "CREATE TABLE ui (id int UNIQUE, v text, n numeric(8, 2));"
          "INSERT INTO ui SELECT CASE WHEN g % 40 = 0 THEN NULL ELSE g END, 'v' || (g % 9), g / 8.0 "
          "FROM generate_series(1, 1500) g;", 1500),
    Table("ci", {"k": "text", "v": "text", "n": "int"}, ["k"],
          "CREATE TABLE ci (k text COLLATE ci PRIMARY KEY, v text COLLATE ci, n int);"
          "INSERT INTO ci SELECT 'key' || g, CASE WHEN g % 2 = 0 THEN 'Mixed' ELSE 'low' END, g "
          "FROM generate_series(1, 40) g;"),
    Table("num", {"k": "numeric", "x": "numeric", "f": "float", "j": "jsonb", "arr": "intarr"}, ["k"],
          "CREATE TABLE num (k numeric PRIMARY KEY, x numeric, f float8, j jsonb, arr int[]);"
          "INSERT INTO num SELECT g / 2.0, g, g / 10.0, jsonb_build_object('n', g, 'tag', 'x'), ARRAY[g, g + 1] "
          "FROM generate_series(1, 40) g;"),
    Table("bag", {"a": "int", "t": "text", "f": "float"}, [],
          "CREATE TABLE bag (a int, t text COLLATE ci, f float8);"
          "INSERT INTO bag SELECT g % 5, CASE WHEN g % 4 = 0 THEN NULL ELSE 'Item' || (g % 3) END, g % 2 "
          "FROM generate_series(1, 40) g;"),
    Table("ck", {"a": "int", "b": "text", "v": "text"}, ["a", "b"],
          "CREATE TABLE ck (a int, b text, v text, PRIMARY KEY (a, b));"
          "INSERT INTO ck SELECT g % 6, 'b' || (g / 6), 'v' || g FROM generate_series(1, 60) g;"),
    Table("big", {"id": "int", "v": "text", "n": "numeric"}, ["id"],
          "CREATE TABLE big (id int PRIMARY KEY, v text, n numeric);"
          "INSERT INTO big SELECT g, md5(g::text), g / 3.0 FROM generate_series(1, 3000) g;", 3000),
    Table("log", {"at": "int", "msg": "text", "n": "numeric"}, [],
          "CREATE TABLE log (at int, msg text, n numeric);"
          "INSERT INTO log SELECT g % 300, 'm' || (g % 7), (g % 4) / 2.0 FROM generate_series(1, 900) g;", 900),
    Table("two", {"id": "int", "code": "text", "v": "text"}, ["code"],
          "CREATE TABLE two (id int UNIQUE, code text NOT NULL UNIQUE, v text);"
          "INSERT INTO two SELECT CASE WHEN g % 5 = 0 THEN NULL ELSE g END, 'c' || g, 'v' "
          "FROM generate_series(1, 30) g;"),
]
BY_NAME = {t.name: t for t in TABLES}

WORDS = ["abc", "ABC", "Abc", "é", "É", "straße", "STRASSE", "x", "", " ", "it''s", "Mixed", "MIXED", "low", "key3",
         "KEY3", "b1", "B1", "c7", "C7"]
NUMERICS = ["1", "1.0", "1.00", "0", "0.0", "2.5", "2.50", "-3", "12345678901234567890.123",
            "12345678901234567890.124", "'NaN'", "NULL"]
FLOATS = ["0", "'-0'", "1", "1.5", "0.1", "1e15", "-1e-7", "'NaN'", "'Infinity'", "'-Infinity'", "NULL"]
JSONS = ["'{\"a\":1,\"b\":2}'", "'{\"b\":2,\"a\":1}'", "'{\"a\":1.5}'", "'{\"a\":1.50}'", "'[1,2]'", "'[2,1]'",
         "'\"word\"'", "'{\"a\":[1,{\"c\":\"d\"}]}'", "'null'", "NULL"]
ARRAYS = ["'{1,2}'", "'{2,1}'", "'{1,NULL}'", "'{}'", "NULL"]


def literal(kind: str, rng: random.Random) -> str:
    """A random SQL value of a column's kind, often one PostgreSQL calls equal to another."""
    if rng.random() < 0.08:
        return "NULL"
    if kind == "int":
        return str(rng.randint(-2, 8))
    if kind == "numeric":
        return rng.choice(NUMERICS)
    if kind == "float":
        return rng.choice(FLOATS) + "::float8"
    if kind == "jsonb":
        return rng.choice(JSONS)
    if kind == "intarr":
        return rng.choice(ARRAYS) + "::int[]"
    return "'" + rng.choice(WORDS) + "'"


def pick(t: Table, rng: random.Random) -> str:
    """SQL true for one row of ``t`` (by its place, which the seed decides)."""
    return f"ctid = (SELECT ctid FROM {t.name} ORDER BY ctid OFFSET {rng.randint(0, t.rows)} LIMIT 1)"


def mutation(rng: random.Random) -> str:
    t = rng.choice(TABLES)
    cols = list(t.columns)
    r = rng.random()
    if r < 0.25:
        sql = (f"INSERT INTO {t.name} ({', '.join(cols)}) VALUES "
               f"({', '.join(literal(t.columns[c], rng) for c in cols)})")
    elif r < 0.5:
        c = rng.choice(cols)
        sql = f"UPDATE {t.name} SET {c} = {literal(t.columns[c], rng)} WHERE {pick(t, rng)}"
    elif r < 0.6:
        sql = f"DELETE FROM {t.name} WHERE {pick(t, rng)}"
    elif r < 0.72:   # what PostgreSQL calls equal, printed otherwise: case, scale, sign
        text = [c for c in cols if t.columns[c] == "text"]
        nums = [c for c in cols if t.columns[c] in ("numeric", "float")]
        c = rng.choice(text + nums)
        if t.columns[c] == "text":
            new = f"{rng.choice(['upper', 'lower', 'initcap'])}({c})"
        elif t.columns[c] == "numeric":
            new = f"round({c}, {rng.randint(0, 3)})"
        else:
            new = f"-{c}"
        sql = f"UPDATE {t.name} SET {c} = {new} WHERE {pick(t, rng)}"
    elif r < 0.8 and t.key:   # a key moved, or NULL put in a unique key
        c = rng.choice(t.key)
        new = "NULL" if rng.random() < 0.4 else (f"{c} || 'm'" if t.columns[c] == "text" else f"{c} + 1000")
        sql = f"UPDATE {t.name} SET {c} = {new} WHERE {pick(t, rng)}"
    elif r < 0.88:   # a copy of a row (a duplicate where nothing forbids it)
        sql = f"INSERT INTO {t.name} SELECT * FROM {t.name} WHERE {pick(t, rng)}"
    elif r < 0.94:   # rows rewritten in place or moved on disk: never a change
        sql = rng.choice([f"UPDATE {t.name} SET {cols[-1]} = {cols[-1]}", f"VACUUM FULL {t.name}",
                          "CLUSTER ui USING ui_id_key", "CLUSTER big USING big_pkey"])
        return sql
    else:
        sql = f"UPDATE {t.name} SET {cols[0]} = {literal(t.columns[cols[0]], rng)} WHERE {pick(t, rng)}"
    refused = "unique_violation OR not_null_violation OR data_exception"   # a change the table refuses: none
    return f"DO $m$ BEGIN {sql}; EXCEPTION WHEN {refused} THEN NULL; END $m$"


# --- the oracle ----------------------------------------------------------------------

def parse_array(text: str) -> tuple:
    inner = text.strip("{}")
    return tuple(None if v == "NULL" else int(v) for v in inner.split(",")) if inner else ()


def norm(kind: str, v: Any) -> Any:
    """A value as a fact holds it, from the oracle's text or the differ's JSON."""
    if v is None:
        return None
    if kind == "int":
        return int(v)
    if kind == "float":
        return repr(float(v))            # the differ: a float, or NaN and the infinities as printed
    if kind == "numeric":
        return str(v)                    # the differ: its digits as a string ("1.00"), or "NaN"
    if kind == "intarr":
        return parse_array(v) if isinstance(v, str) else tuple(v)
    if kind == "jsonb":
        if isinstance(v, str):           # the oracle's text, or the differ's, where two looked alike
            try:
                v = json.loads(v)
            except ValueError:
                pass                     # a document that is a string (only words here)
        return json.dumps(v, sort_keys=True)
    return v


def norm_row(t: Table, row: dict[str, Any]) -> tuple:
    return tuple(sorted((c, norm(t.columns[c], v)) for c, v in row.items()))


def oracle(server: PgServer, left: str, right: str) -> Counter:
    facts: Counter = Counter()
    for t in TABLES:
        sides = []
        for db in (left, right):
            cols = ", ".join(f"{qi(c)}::text AS {qi(c)}" for c in t.columns)
            sides.append(server.query(f"SELECT {cols} FROM {t.name}", db))
        keyed: list[dict[tuple, dict]] = [{}, {}]
        loose: list[Counter] = [Counter(), Counter()]
        for rows, found, bag in zip(sides, keyed, loose, strict=True):
            for r in rows:
                key = tuple(r[c] for c in t.key)
                if t.key and None not in key:
                    assert key not in found, (t.name, key)
                    found[key] = r
                else:
                    bag[norm_row(t, r)] += 1
        a, b = keyed
        kn = {k: tuple(norm(t.columns[c], v) for c, v in zip(t.key, k, strict=True)) for k in set(a) | set(b)}
        for k in set(a) - set(b):
            facts[("removed", t.name, kn[k], norm_row(t, a[k]))] += 1
        for k in set(b) - set(a):
            facts[("added", t.name, kn[k], norm_row(t, b[k]))] += 1
        for k in set(a) & set(b):
            for c in t.columns:
                if c not in t.key and a[k][c] != b[k][c]:
                    facts[("changed", t.name, kn[k], c, norm(t.columns[c], a[k][c]),
                           norm(t.columns[c], b[k][c]))] += 1
        for row in set(loose[0]) | set(loose[1]):
            n = loose[1][row] - loose[0][row]
            if n:
                facts[("multiset", t.name, row, n)] += 1
    return facts


def differ_facts(changes: list[dict[str, Any]]) -> Counter:
    facts: Counter = Counter()
    for c in changes:
        t = BY_NAME.get(c["table"] or "")
        if t is None or c.get("schema") or c["intent"]:
            facts[("unexpected", c["path"], c["kind"])] += 1
            continue
        key = None if c["key"] is None else tuple(norm(t.columns[k], v) for k, v in zip(t.key, c["key"], strict=False))
        if c["kind"] == "changed":
            kind = t.columns[c["column"]]
            facts[("changed", t.name, key, c["column"], norm(kind, c["left"]), norm(kind, c["right"]))] += 1
        elif c.get("count") is not None:
            row = c["right"] if c["kind"] == "added" else c["left"]
            facts[("multiset", t.name, norm_row(t, row), c["count"] if c["kind"] == "added" else -c["count"])] += 1
        else:
            facts[(c["kind"], t.name, key, norm_row(t, c["right"] if c["kind"] == "added" else c["left"]))] += 1
    return facts


def disagreement(ours: Counter, truth: Counter) -> str:
    only_ours, only_truth = ours - truth, truth - ours
    lines = [f"  differ only: {f}" for f in sorted(only_ours, key=repr)]
    lines += [f"  oracle only: {f}" for f in sorted(only_truth, key=repr)]
    return "\n".join(lines)


# --- the rounds ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(docker_client):
    with pg_server(docker_client) as srv:
        srv.psql("CREATE DATABASE awkward")
        srv.psql(CI + "".join(t.create for t in TABLES) + "ANALYZE", "awkward")
        yield srv


def diff(left: Side, right: Side) -> list[dict[str, Any]]:
    changes, _groups = diff_databases("db", left, right)
    return json.loads(json.dumps([c.as_dict() for c in changes]))


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_the_differ_agrees_with_a_full_comparison(server, chunk, monkeypatch):
    if chunk % 2:   # the differ as it runs against PostgreSQL 13 and older
        monkeypatch.setattr(Side, "prepare", lambda side: 130000)
    seed = SEED * 1000 + chunk
    rng = random.Random(seed)
    prod, clone = f"prod{chunk}", f"clone{chunk}"
    copy_database(server, "awkward", prod)
    copy_database(server, "awkward", clone)
    log = [f"seed {seed}" + (" (no hash_record)" if chunk % 2 else "")]
    for i in range(ROUNDS):
        for _ in range(rng.randint(1, 10)):
            db = prod if rng.random() < 0.15 else clone
            sql = mutation(rng)
            log.append(f"round {i}, {db}: {sql}")
            server.psql(sql, db)
        ours = differ_facts(diff(Side(server, prod), Side(server, clone)))
        truth = oracle(server, prod, clone)
        assert ours == truth, "\n".join(log) + "\n" + disagreement(ours, truth)
    assert sum(truth.values()) > 20       # the rounds changed something worth comparing


def test_the_oracle_sees_a_planted_difference(server):
    """The comparison can fail: a change left out of the differ's side is caught."""
    copy_database(server, "awkward", "planted_prod")
    copy_database(server, "awkward", "planted_clone")
    server.psql("UPDATE ci SET v = upper(v) WHERE k = 'key3'; INSERT INTO bag VALUES (1, 'item1', 1)",
                "planted_clone")
    changes = diff(Side(server, "planted_prod"), Side(server, "planted_clone"))
    truth = oracle(server, "planted_prod", "planted_clone")
    assert differ_facts(changes) == truth and len(changes) == 2
    for left_out in changes:
        rest = differ_facts([c for c in changes if c is not left_out])
        assert rest != truth and disagreement(rest, truth).startswith("  oracle only:")
