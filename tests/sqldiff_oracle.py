"""SQLite's own ``sqldiff`` as an oracle for the SQLite diff: both outputs as facts.

A fact is one thing a diff says, in a form both tools can say it:

    ("changed", table, key, column, old, new)     a value of a row that both sides have
    ("removed" | "added", table, key, row)         a keyed row on one side only
    ("multiset", table, row, n)                    n more copies on the right (n < 0: fewer)
    ("table", table, "added" | "removed" | "rebuilt"), ("column", table, column, "added"),
    ("index", table, name)                         schema

Values are tagged by storage class: ``("i", 1)``, ``("r", 1.0)``, ``("t", "text")``,
``("b", "x'00ff' (2 bytes)")`` or None. ``repro-tui diff --json`` is read as a user reads
it; ``sqldiff`` prints SQL that turns the left file into the right one, which is parsed,
and the rows it names only by key or rowid are read from the two files.

Where the two tools represent the same difference differently, or where sqldiff cannot
see one, the normaliser says so below, case by case (each is an ``# sqldiff:`` comment):
every other disagreement is a failure.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.diff.values import abbreviate_blob, decode_text

Fact = tuple[Any, ...]
BLOB_SHOWN = re.compile(r"^x'[0-9a-f]*…?' \(\d+ bytes\)$")


# --- values --------------------------------------------------------------------------

class Text(bytes):
    """A TEXT value as SQLite holds it (bytes), told apart from a BLOB."""


def norm(value: Any) -> Any:
    """A value as a fact holds it, from a file, a parsed literal, or the JSON output."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("no booleans in SQLite")
    if isinstance(value, int):
        return ("i", value)
    if isinstance(value, float):
        # sqldiff prints reals with 15 significant digits (%!.15g), and -0.0 as 0.0
        return ("r", float(f"{value:.15g}") + 0.0)
    if isinstance(value, Text):
        # sqldiff prints TEXT up to its first NUL (a C string): both sides are cut there
        return ("t", decode_text(bytes(value).split(b"\0", 1)[0]))
    if isinstance(value, bytes):
        # our output abbreviates a BLOB to its first 16 bytes and its length
        return ("b", str(abbreviate_blob(value)))
    if isinstance(value, str):
        if BLOB_SHOWN.match(value):
            return ("b", value)
        return ("t", value.split("\0", 1)[0])
    raise TypeError(f"unexpected value {value!r}")


def norm_row(row: dict[str, Any], drop: set[str]) -> tuple:
    return tuple(sorted((k.lower(), norm(v)) for k, v in row.items() if k.lower() not in drop))


def multiset_row(row: dict[str, Any], drop: set[str]) -> tuple:
    """A row of a multiset fact, its numbers by value alone.

    sqldiff: the rows it pairs by rowid are compared with "IS NOT", which calls 1 and 1.0
    equal, so a change of storage class alone between them never reaches its output. A
    multiset fact therefore counts 1 and 1.0 as one value on both sides (that we tell them
    apart is tested in test_diff_sqlite_exact.py)."""
    return tuple((k, ("i", int(v[1])) if v and v[0] == "r" and v[1].is_integer() and abs(v[1]) < 2**63 else v)
                 for k, v in norm_row(row, drop))


# --- the files -------------------------------------------------------------------------

@dataclass
class TableShape:
    name: str
    columns: list[str]                  # as PRAGMA table_info lists them (no generated column)
    generated: set[str]                 # lower names
    pk: list[str]                       # declared primary key, in key order
    rowid: bool                         # a rowid table


def name_of(value: Any) -> Any:
    """A name read on a connection that returns TEXT as bytes (``Text``)."""
    return bytes(value).decode() if isinstance(value, bytes) else value


def shapes(conn: sqlite3.Connection, schema: str) -> dict[str, TableShape]:
    out = {}
    rows = conn.execute(f"SELECT name, sql FROM {schema}.sqlite_schema WHERE type = 'table'").fetchall()
    for name, sql in ((name_of(n), name_of(s) or "") for n, s in rows):
        if name.lower().startswith("sqlite_") or re.match(r"\s*CREATE\s+VIRTUAL", sql, re.I):
            continue
        info = [[name_of(v) for v in r] for r in conn.execute(f'PRAGMA {schema}.table_xinfo("{name}")')]
        cols = [r[1] for r in info if r[6] == 0]
        pk = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
        tail = sql[sql.rfind(")"):]
        out[name.lower()] = TableShape(name, cols, {r[1].lower() for r in info if r[6] in (2, 3)}, pk,
                                       not re.search(r"WITHOUT\s+ROWID", tail, re.I))
    return out


class Files:
    """The two files on one connection (left ``main``, right ``aux``), read as sqldiff reads them."""

    def __init__(self, left: Path, right: Path) -> None:
        self.conn = sqlite3.connect(f"file:{left}?mode=ro", uri=True, isolation_level=None)
        self.conn.text_factory = Text
        self.conn.execute("ATTACH ? AS aux", (f"file:{right}?mode=ro",))
        self.left, self.right = shapes(self.conn, "main"), shapes(self.conn, "aux")

    def close(self) -> None:
        self.conn.close()

    def row(self, schema: str, table: str, where: str, args: Iterable[Any],
            columns: list[str] | None = None) -> dict[str, Any] | None:
        shape = (self.left if schema == "main" else self.right)[table.lower()]
        cols = columns or shape.columns
        sql = f'SELECT {", ".join(q(c) for c in cols)} FROM {schema}.{q(shape.name)} WHERE {where}'
        rows = self.conn.execute(sql, list(args)).fetchall()
        assert len(rows) <= 1, f"{sql} {args}: {len(rows)} rows"
        return dict(zip(cols, rows[0], strict=True)) if rows else None


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def exact(alias: str, columns: list[str], values: list[Any]) -> tuple[str, list[Any]]:
    """SQL matching a key exactly (bytes and storage class), with its parameters."""
    parts, args = [], []
    for c, v in zip(columns, values, strict=True):
        if v is None:
            parts.append(f"{alias}{q(c)} IS NULL")
            continue
        if isinstance(v, Text):
            parts.append(f"{alias}{q(c)} = CAST(? AS TEXT) COLLATE BINARY")
            args.append(bytes(v))
        else:
            parts.append(f"{alias}{q(c)} = ? COLLATE BINARY")
            args.append(v)
        parts.append(f"typeof({alias}{q(c)}) = ?")
        args.append({int: "integer", float: "real"}.get(type(v), "text" if isinstance(v, (str, Text)) else "blob"))
    return " AND ".join(parts), args


def from_json(value: Any) -> Any:
    """A key value of our JSON, to look the row up (keys hold no BLOB and no escaped text)."""
    return Text(value.encode()) if isinstance(value, str) else value


# --- sqldiff's output --------------------------------------------------------------------

TOKEN = re.compile(rb"""
    (?P<ws>\s+|--[^\n]*)
  | (?P<text>'(?:[^']|'')*')
  | (?P<blob>[xX]'[0-9a-fA-F]*')
  | (?P<num>-?(?:\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|Inf\b))
  | (?P<qid>"(?:[^"]|"")*"|\[[^\]]*\])
  | (?P<id>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<concat>\|\|)
  | (?P<punct>.)
""", re.X | re.S)


@dataclass
class Statement:
    verb: str                                   # INSERT, UPDATE, DELETE, DROP TABLE, CREATE TABLE, ...
    table: str = ""
    values: dict[str, Any] = field(default_factory=dict)    # INSERT's row, UPDATE's assignments
    where: dict[str, Any] = field(default_factory=dict)     # UPDATE's and DELETE's key
    name: str = ""                              # an index's name


def literal(kind: str, raw: bytes) -> Any:
    if kind == "text":
        return Text(raw[1:-1].replace(b"''", b"'"))
    if kind == "blob":
        return bytes.fromhex(raw[2:-1].decode())
    if kind == "num":
        text = raw.decode()
        return float(text) if re.search(r"[.eEn]", text) else int(text)
    if raw.upper() == b"NULL":
        return None
    raise ValueError(f"not a literal: {raw!r}")


def value_at(toks: list[tuple[str, bytes]], i: int) -> tuple[Any, int]:
    """The value that starts at ``toks[i]``, and the index after it.

    sqldiff writes a control character of a TEXT as a BLOB literal joined on, as in
    ``'a'||X'0a'||'b'``: the pieces make one TEXT again."""
    value = literal(*toks[i])
    i += 1
    while i < len(toks) and toks[i][0] == "concat":
        piece = literal(*toks[i + 1])
        value = Text(bytes(value) + bytes(piece))
        i += 2
    return value, i


def parse(output: bytes) -> list[Statement]:
    tokens: list[tuple[str, bytes]] = [(m.lastgroup or "", m.group()) for m in TOKEN.finditer(output)
                                       if m.lastgroup != "ws"]
    out, current = [], []
    for tok in tokens:
        if tok == ("punct", b";"):
            if current:
                out.append(statement(current))
            current = []
        else:
            current.append(tok)
    assert not current, f"unterminated statement: {current[:8]}"
    return out


def ident(tok: tuple[str, bytes]) -> str:
    kind, raw = tok
    if kind == "qid":       # "a ""b""" or [a b]
        raw = raw[1:-1].replace(b'""', b'"') if raw[:1] == b'"' else raw[1:-1]
    name = raw
    return name.decode()


def statement(toks: list[tuple[str, bytes]]) -> Statement:
    words = [raw.upper() for _, raw in toks[:3]]
    if words[:2] == [b"INSERT", b"INTO"]:
        table = ident(toks[2])
        close = next(i for i, t in enumerate(toks) if t == ("punct", b")"))
        cols = [ident(t) for t in toks[4:close] if t[0] in ("id", "qid")]
        vals, i = [], close + 3
        while i < len(toks) - 1:
            value, i = value_at(toks, i)
            vals.append(value)
            i += 1          # the comma (or the closing parenthesis)
        return Statement("INSERT", table, dict(zip(cols, vals, strict=True)))
    if words[0] == b"UPDATE":
        at = [raw.upper() for _, raw in toks].index(b"WHERE")
        return Statement("UPDATE", ident(toks[1]), assignments(toks[3:at], b","), assignments(toks[at + 1:], b"AND"))
    if words[:2] == [b"DELETE", b"FROM"]:
        return Statement("DELETE", ident(toks[2]), where=assignments(toks[4:], b"AND"))
    if words[:2] == [b"DROP", b"TABLE"]:
        return Statement("DROP TABLE", ident(toks[2]))
    if words[:2] == [b"CREATE", b"TABLE"]:
        return Statement("CREATE TABLE", ident(toks[2]))
    if words[:2] == [b"ALTER", b"TABLE"]:
        return Statement("ADD COLUMN", ident(toks[2]), name=ident(toks[-1]))
    if words[:2] == [b"DROP", b"INDEX"]:
        return Statement("DROP INDEX", name=ident(toks[2]))
    if words[0] == b"CREATE" and b"INDEX" in words:
        at = [raw.upper() for _, raw in toks].index(b"INDEX")
        return Statement("CREATE INDEX", ident(toks[at + 3]), name=ident(toks[at + 1]))
    raise ValueError(f"unknown statement: {b' '.join(r for _, r in toks)[:200]!r}")


def assignments(toks: list[tuple[str, bytes]], sep: bytes) -> dict[str, Any]:
    out, i = {}, 0
    while i < len(toks):
        name = ident(toks[i])
        assert toks[i + 1] == ("punct", b"="), toks[i:i + 3]
        out[name], i = value_at(toks, i + 2)
        if i < len(toks):
            assert toks[i][1].upper() == sep, toks[i]
            i += 1
    return out


def run_sqldiff(left: Path, right: Path, *flags: str) -> list[Statement]:
    res = subprocess.run(["sqldiff", *flags, str(left), str(right)], capture_output=True, check=True)
    return parse(res.stdout)


# --- both sides as facts ------------------------------------------------------------------

@dataclass
class Verdict:
    ours: Counter
    oracle: Counter
    dropped: Counter          # our facts set aside as differences of representation, by reason

    @property
    def agree(self) -> bool:
        return self.ours == self.oracle

    def explain(self) -> str:
        only_ours = self.ours - self.oracle
        only_oracle = self.oracle - self.ours
        lines = [f"only in repro-tui ({sum(only_ours.values())}):"]
        lines += [f"  {f}" for f in sorted(only_ours, key=repr)[:30]]
        lines += [f"only in sqldiff ({sum(only_oracle.values())}):"]
        lines += [f"  {f}" for f in sorted(only_oracle, key=repr)[:30]]
        return "\n".join(lines)


def compare(left: Path, right: Path, ours_json: list[dict[str, Any]]) -> Verdict:
    """Our changes (``--json``'s ``data`` list, or ``as_dict()`` of each) against sqldiff's."""
    files = Files(left, right)
    try:
        keyed = run_sqldiff(left, right, "--primarykey")
        oracle, rebuilt, dropped_tables, added_cols = oracle_facts(files, keyed, left, right)
        ours, dropped = our_facts(files, ours_json, rebuilt, dropped_tables, added_cols, oracle)
        return Verdict(ours, oracle, dropped)
    finally:
        files.close()


def oracle_facts(files: Files, stmts: list[Statement], left: Path, right: Path
                 ) -> tuple[Counter, set[str], set[str], dict[str, set[str]]]:
    facts: Counter = Counter()
    multiset: Counter = Counter()
    created = {s.table.lower() for s in stmts if s.verb == "CREATE TABLE"}
    dropped = {s.table.lower() for s in stmts if s.verb == "DROP TABLE"}
    rebuilt = created & dropped      # sqldiff: "DROP TABLE t; -- due to schema mismatch", then all of t
    gone = created | dropped         # tables sqldiff writes whole: no row of theirs is compared
    added_cols: dict[str, set[str]] = {}
    null_keys: set[str] = set()
    for s in stmts:
        t = s.table.lower()
        if s.verb in ("CREATE TABLE", "DROP TABLE"):
            kind = "rebuilt" if t in rebuilt else "added" if s.verb == "CREATE TABLE" else "removed"
            facts[("table", files.right.get(t, files.left.get(t)).name, kind)] = 1  # type: ignore[union-attr]
        elif s.verb == "ADD COLUMN":
            added_cols.setdefault(t, set()).add(s.name.lower())
            facts[("column", files.right[t].name, s.name, "added")] = 1
        elif s.verb in ("DROP INDEX", "CREATE INDEX"):
            owner = s.table or index_table(files, s.name)
            if owner.lower() not in gone:
                facts[("index", files.right.get(owner.lower(), files.left.get(owner.lower())).name,  # type: ignore[union-attr]
                       s.name)] = 1
        elif t.startswith("sqlite_") or t in gone:
            continue   # sqldiff diffs sqlite_sequence too: SQLite's bookkeeping, not data; we leave it out
        elif not files.left[t].pk or not files.right[t].pk:
            rowid_changes(files, s, t, multiset)
        elif any(s.where.get(p, 0) is None or s.values.get(p, 0) is None for p in files.right[t].pk):
            # sqldiff --primarykey matches keys with "=", which NULL never satisfies: it deletes
            # every row whose key holds NULL and inserts it again. Those rows are taken from its
            # rowid run below instead, where a row keeps its identity.
            null_keys.add(t)
        else:
            keyed_change(files, s, t, added_cols.get(t, set()), facts)
    if null_keys:
        for s in run_sqldiff(left, right):
            if s.table.lower() in null_keys and s.verb in ("INSERT", "UPDATE", "DELETE"):
                rowid_changes(files, s, s.table.lower(), multiset, only_null_keys=True)
    for (t, row), n in multiset.items():
        if n:
            facts[("multiset", t, row, n)] += 1
    return facts, rebuilt, gone, added_cols


def index_table(files: Files, name: str) -> str:
    for schema in ("main", "aux"):
        row = files.conn.execute(f"SELECT tbl_name FROM {schema}.sqlite_schema WHERE type = 'index' AND name = ?",
                                 (name,)).fetchone()
        if row:
            return str(name_of(row[0]))
    raise AssertionError(f"index {name} in neither file")


def keyed_change(files: Files, s: Statement, t: str, added: set[str], facts: Counter) -> None:
    lshape, rshape = files.left[t], files.right[t]
    if s.verb == "INSERT":
        key = tuple(norm(s.values[p]) for p in rshape.pk)
        facts[("added", rshape.name, key, norm_row(s.values, rshape.generated))] += 1
        return
    where, args = exact("", list(s.where), list(s.where.values()))
    key = tuple(norm(s.where[p]) for p in rshape.pk)
    if s.verb == "DELETE":
        row = files.row("main", t, where, args)
        assert row is not None, f"sqldiff deletes {t} {key}, which the left file lacks"
        facts[("removed", lshape.name, key, norm_row(row, lshape.generated))] += 1
        return
    # sqldiff names a changed row by the right side's key, matched to the left one with "=":
    # under the key's collation (NOCASE: 'abc' = 'ABC') and affinity (1 = '1' = 1.0)
    pair_on = " AND ".join(f"A.{q(p)} = B.{q(p)}" for p in rshape.pk)
    bwhere, bargs = exact("B.", list(s.where), list(s.where.values()))
    cols = [c for c in s.values if c.lower() not in added]   # an added column is one schema fact
    if not cols:
        return
    sel = ", ".join(f"A.{q(c)}" for c in cols)
    row = files.conn.execute(f"SELECT {sel} FROM main.{q(lshape.name)} A JOIN aux.{q(rshape.name)} B ON {pair_on} "
                             f"WHERE {bwhere}", bargs).fetchone()
    assert row is not None, f"sqldiff updates {t} {key}, which the left file lacks"
    for c, old in zip(cols, row, strict=True):
        facts[("changed", lshape.name, key, c.lower(), norm(old), norm(s.values[c]))] += 1


def rowid_changes(files: Files, s: Statement, t: str, multiset: Counter, only_null_keys: bool = False) -> None:
    """A statement of sqldiff on a row it names by rowid, as the whole rows on both sides.

    sqldiff: a table without a primary key is keyed by its rowid, which a VACUUM may
    renumber; we compare such rows as multisets. Each statement becomes the left row
    taken away and the right row put in (read by rowid from each file); equal ones cancel."""
    lshape, rshape = files.left[t], files.right[t]
    common = [c for c in lshape.columns if c.lower() in {x.lower() for x in rshape.columns}]
    rowid = s.values.get("rowid") if s.verb == "INSERT" else s.where.get("rowid")
    assert isinstance(rowid, int), f"sqldiff names a row of {t} without its rowid: {s}"
    for schema, shape, sign in (("main", lshape, -1), ("aux", rshape, 1)):
        row = files.row(schema, t, "rowid = ?", [rowid], common)
        if row is None or (only_null_keys and all(row[p] is not None for p in shape.pk)):
            continue
        multiset[(lshape.name, multiset_row(row, lshape.generated | rshape.generated))] += sign


def our_facts(files: Files, changes: list[dict[str, Any]], rebuilt: set[str], gone: set[str],
              added_cols: dict[str, set[str]], oracle: Counter) -> tuple[Counter, Counter]:
    facts: Counter = Counter()
    multiset: Counter = Counter()
    dropped: Counter = Counter()
    schema_of: set[str] = set()
    pending: dict[str, dict[str, list[dict[str, Any]]]] = {}     # table -> kind -> keyed rows
    for c in changes:
        table = c["table"]
        t = (table or c["path"].split(".", 1)[1]).lower()
        if c.get("schema"):
            fact = schema_fact(c, t)
            if fact is None:
                dropped["view, trigger or column type: sqldiff compares neither"] += 1
            elif fact[0] == "table" or t not in gone:
                facts[fact] += 1
            schema_of.add(t)
            continue
        if t in gone:
            continue
        shape_l, shape_r = files.left[t], files.right[t]
        generated = shape_l.generated | shape_r.generated
        if c["key"] is None:
            row = c["left"] if c["kind"] == "removed" else c["right"]
            sign = -1 if c["kind"] == "removed" else 1
            multiset[(shape_l.name, multiset_row(row, generated))] += sign * c["count"]
        elif c["kind"] == "changed":
            if c["column"].lower() in generated:
                # sqldiff leaves out generated columns (PRAGMA table_info): they follow from the others
                dropped["generated column"] += 1
                continue
            fact = ("changed", shape_l.name, tuple(norm(v) for v in c["key"]), c["column"].lower(),
                    norm(c["left"]), norm(c["right"]))
            if fact not in oracle and not sqldiff_sees(files, t, c["key"], c["column"]):
                # sqldiff compares with "A.c IS NOT B.c": under the column's collation (NOCASE
                # hides 'Paris' -> 'PARIS') and affinity (1 IS 1.0, 1 IS '1' in an INTEGER
                # column); we compare bytes and storage classes. SQLite says sqldiff cannot see it.
                dropped["sqldiff compares under collation and affinity"] += 1
                continue
            facts[fact] += 1
        else:
            pending.setdefault(t, {}).setdefault(c["kind"], []).append(c)
    for t, kinds in pending.items():
        pair_keys(files, t, kinds.get("removed", []), kinds.get("added", []), facts, dropped)
    for (t, row), n in multiset.items():
        if n:
            facts[("multiset", t, row, n)] += 1
    for t in rebuilt:
        # sqldiff rewrites a table whose columns it cannot line up; we say what changed in its schema
        if t in schema_of:
            facts[("table", files.right[t].name, "rebuilt")] += 1
        for fact in [f for f in facts if f[0] == "table" and f[1].lower() == t and f[2] != "rebuilt"]:
            del facts[fact]
    return facts, dropped


def schema_fact(c: dict[str, Any], t: str) -> Fact | None:
    parts = c["path"].split(".")
    if c["column"] is None and len(parts) == 2:
        return ("table", c["table"], c["kind"]) if c["kind"] != "changed" else ("table", c["table"], "rebuilt")
    if c["column"] is not None:
        if c["kind"] == "added":
            return ("column", c["table"], c["column"], "added")
        if c["kind"] == "removed":
            return ("column", c["table"], c["column"], "removed")
        return None          # a declaration changed: sqldiff compares column names only
    if parts[-2] == "indexes":
        return ("index", c["table"], parts[-1])
    return None


def sqldiff_sees(files: Files, t: str, key: list[Any], column: str) -> bool:
    """Whether sqldiff's own comparison tells the two values of a row apart."""
    lshape, rshape = files.left[t], files.right[t]
    vals = [from_json(v) for v in key]
    aw, aargs = exact("A.", lshape.pk, vals)
    bw, bargs = exact("B.", rshape.pk, vals)
    row = files.conn.execute(f"SELECT A.{q(column)} IS NOT B.{q(column)} FROM main.{q(lshape.name)} A, "
                             f"aux.{q(rshape.name)} B WHERE {aw} AND {bw}", aargs + bargs).fetchone()
    assert row is not None, f"{t} {key} is not on both sides"
    return bool(row[0])


def pair_keys(files: Files, t: str, removed: list[dict[str, Any]], added: list[dict[str, Any]],
              facts: Counter, dropped: Counter) -> None:
    """Our removed and added rows, paired the way sqldiff pairs them.

    We match keys exactly; sqldiff matches them with "=" (``A.k = B.k``), under the key
    column's collation and affinity. A key whose case changed under NOCASE, or whose storage
    class changed (1 to 1.0 in an untyped key, 1 to '1' after the column became TEXT), is a
    row removed and a row added for us and one row for sqldiff. SQLite decides which of our
    pairs sqldiff sees as one row; the pair then reads as sqldiff's changed values."""
    lshape, rshape = files.left[t], files.right[t]
    generated = lshape.generated | rshape.generated
    by_key = {json.dumps(c["key"]): c for c in added}
    on = " AND ".join(f"A.{q(p)} = B.{q(p)}" for p in rshape.pk)
    cols = [c for c in lshape.columns if c in rshape.columns and c not in lshape.pk and c.lower() not in generated]
    for r in removed:
        aw, aargs = exact("A.", lshape.pk, [from_json(v) for v in r["key"]])
        flags = "".join(f", A.{q(c)} IS NOT B.{q(c)}" for c in cols)
        found = files.conn.execute(f"SELECT {', '.join(f'B.{q(p)}' for p in rshape.pk)}{flags} "
                                   f"FROM main.{q(lshape.name)} A JOIN aux.{q(rshape.name)} B ON {on} WHERE {aw}",
                                   aargs).fetchone()
        other = None
        if found is not None:
            bkey = [name_of(v) for v in found[:len(rshape.pk)]]
            other = by_key.pop(json.dumps(bkey), None)
        if other is None:
            facts[("removed", lshape.name, tuple(norm(v) for v in r["key"]), norm_row(r["left"], generated))] += 1
            continue
        dropped["a key equal under its collation or affinity: one row for sqldiff"] += 1
        key = tuple(norm(v) for v in other["key"])
        for c, differs in zip(cols, found[len(rshape.pk):], strict=True):
            if differs:
                facts[("changed", lshape.name, key, c.lower(), norm(r["left"][c]), norm(other["right"][c]))] += 1
    for a in by_key.values():
        facts[("added", rshape.name, tuple(norm(v) for v in a["key"]), norm_row(a["right"], generated))] += 1
