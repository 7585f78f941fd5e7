"""The data diff of one PostgreSQL database on two servers (prod's and a clone's).

Rows are never loaded to be compared in Python: each server sums row hashes over ranges
of the key, both at once; only ranges whose checksums differ are split again (bisected),
until they are small enough to compare row hashes, and only the rows that differ are
read. This is the method of data-diff and reladiff; a first pass cuts the key space into
many ranges at once so that 100 changed rows in a million take three round trips and one
scan of the table per server.

A row is found by its primary key or, in a table without one, by a unique index both
sides have (not partial, on plain columns, none of them scrubbed). A row whose unique
key holds NULL (a unique index allows it any number of times) identifies nothing: such
rows are compared as the rows of a table without any key are, as multisets (buckets of
row hashes, the differing buckets read grouped by value, with their counts).

Values are compared as PostgreSQL prints them (``to_json``), not by ``=``: numeric keeps
its scale (``1`` is not ``1.0``), ``-0`` is not ``0``, text under a nondeterministic
collation keeps its case (``'abc'`` is not ``'ABC'``), and in a column whose type differs
between the sides a value keeps its kind (the number ``1`` is not the text ``'1'``). A
key matches only a key printed the same, so a key whose case or scale changed is a row
removed and a row added, as in the SQLite diff. jsonb is normalised by PostgreSQL itself
(key order, spaces): two jsonb values that differ only so are equal; json keeps its text,
so the same edit of a json value is a change. The row hashes follow the same rule: a
column is hashed by its type's hash function only where equal values print alike.

Scrubbed columns are left out of the row hashes: a scrubbed column is one change with
the intent ``scrub`` per column (when its values differ), never one per row. The schema
is compared from the catalogs. The changes are ``workbench.diff.model.Change`` objects of
the same shape as the SQLite diff's.

Longer than most modules (about 560 lines), on purpose: the checksummed ranges, the keys
found from the catalogs and the multisets of keyless rows are one method, and the rules of
what counts as equal (printed values, hash functions, the sessions' settings) must be read
together to see why the diff is exact.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from workbench.diff.model import Change, GroupSummary
from workbench.diff.values import Shower, key_text
from workbench.errors import BackendError
from workbench.psql import PgServer, qi, ql

FIRST_SPLIT = 2000        # ranges of the first pass (at most)
SPLIT = 32                # ranges a differing range is cut into
LEAF_ROWS = 256           # a range with at most this many rows is compared row by row
INT_TYPES = {"smallint", "integer", "bigint"}
# types whose hash function tells apart any two values that print differently (numeric
# only with a fixed scale; text hashed as its bytes, under the "C" collation)
EXACT_HASH = {"smallint", "integer", "bigint", "boolean", "date", "uuid", "bytea", "oid", "time without time zone",
              "timestamp without time zone", "timestamp with time zone"}
BYTES_HASH = {"text", "character varying"}
FLOAT_TYPES = {"real", "double precision"}


@dataclass
class TableDef:
    schema: str
    name: str
    columns: list[tuple[str, str, bool]]            # name, type, not null
    pk: list[str]
    indexes: dict[str, str] = field(default_factory=dict)
    uniques: dict[str, list[str]] = field(default_factory=dict)   # unique indexes a row can be found by

    @property
    def qname(self) -> str:
        return f"{qi(self.schema)}.{qi(self.name)}"

    @property
    def shown(self) -> str:
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"

    def col_type(self, col: str) -> str:
        return next((t for c, t, _n in self.columns if c == col), "")

    def not_null(self, col: str) -> bool:
        return next((n for c, _t, n in self.columns if c == col), False)

    def keys(self) -> list[tuple[str, list[str]]]:
        """What can find a row, best first: the primary key, then the unique indexes whose
        columns are all NOT NULL, then the others; fewer columns first."""
        uniques = sorted(self.uniques.items(),
                         key=lambda u: (not all(self.not_null(c) for c in u[1]), len(u[1]), u[0]))
        return ([("primary key", self.pk)] if self.pk else []) + [(f"unique index {n}", c) for n, c in uniques]


def row_key(lt: TableDef, rt: TableDef, scrubbed: set[str]) -> tuple[list[str], str]:
    """The columns that find a row on both sides, and what they are (``no key``: none; a
    ``scrubbed key``: none but keys holding a scrubbed column, which find no row of prod
    in the clone)."""
    theirs = {tuple(cols) for _how, cols in rt.keys()}
    common = [(how, cols) for how, cols in lt.keys() if tuple(cols) in theirs]
    for how, cols in common:
        if not scrubbed & {c.lower() for c in cols}:
            return cols, how
    return [], "scrubbed key" if common else "no key"


@dataclass
class Side:
    server: PgServer
    db: str

    def query(self, sql: str) -> list[dict[str, Any]]:
        return self.server.query(sql, self.db)

    def prepare(self) -> int:
        """No JIT for the diff's queries (compiling one costs more than the scan it would
        speed up: 0.35 s of a 0.45 s range query here); returns the server's version number."""
        try:
            self.server.psql("SET jit = off", self.db)
        except BackendError:
            pass   # a server without JIT
        # values printed the same way on both servers, whatever they are set to: floats
        # exactly (extra_float_digits = 0 prints 0.3 and 0.30000000000000004 alike), times
        # in UTC (a clone restored from a dump may not have prod's time zone)
        self.server.psql("SET extra_float_digits = 3; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
                         "SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'", self.db)
        return self.server.version()


def read_schema(side: Side) -> dict[tuple[str, str], TableDef]:
    rows = side.query(
        "SELECT n.nspname AS s, c.relname AS t, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS typ, "
        "a.attnotnull AS nn, a.attnum AS pos "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2, a.attnum")
    tables: dict[tuple[str, str], TableDef] = {}
    for r in rows:
        t = tables.setdefault((r["s"], r["t"]), TableDef(r["s"], r["t"], [], []))
        t.columns.append((r["col"], r["typ"], r["nn"]))
    # unique indexes that can find a row: valid, not partial, on columns (INCLUDE ones left out)
    keys = side.query(
        "SELECT n.nspname AS s, c.relname AS t, x.relname AS i, i.indisprimary AS p, a.attname AS col, k.ord AS ord "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class x ON x.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON k.ord <= i.indnkeyatts "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
        "WHERE i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL ORDER BY 1, 2, 3, 6")
    for r in keys:
        owner = tables.get((r["s"], r["t"]))
        if owner is not None:
            (owner.pk if r["p"] else owner.uniques.setdefault(r["i"], [])).append(r["col"])
    for r in side.query("SELECT schemaname AS s, tablename AS t, indexname AS i, indexdef AS d FROM pg_indexes "
                        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"):
        if (r["s"], r["t"]) in tables:
            tables[(r["s"], r["t"])].indexes[r["i"]] = r["d"]
    return tables


def schema_changes(store: str, left: dict[tuple[str, str], TableDef],
                   right: dict[tuple[str, str], TableDef]) -> Iterator[Change]:
    for key in sorted(set(left) | set(right)):
        lt, rt = left.get(key), right.get(key)
        if lt is None or rt is None:
            t = lt or rt
            assert t is not None
            cols = [c for c, _t, _n in t.columns]
            yield Change("data", f"{store}.{t.shown}", "removed" if rt is None else "added",
                         left={"columns": cols} if lt else None, right={"columns": cols} if rt else None,
                         store=store, table=t.shown, schema=True)
            continue
        lcols = {c: (typ, nn) for c, typ, nn in lt.columns}
        rcols = {c: (typ, nn) for c, typ, nn in rt.columns}
        for col in [c for c, _t, _n in lt.columns] + [c for c, _t, _n in rt.columns if c not in lcols]:
            a, b = lcols.get(col), rcols.get(col)
            if a == b:
                continue
            yield Change("data", f"{store}.{lt.shown}.{col}", "added" if a is None else "removed" if b is None
                         else "changed", left=_decl(a), right=_decl(b), store=store, table=lt.shown, column=col,
                         schema=True)
        for idx in sorted(set(lt.indexes) | set(rt.indexes)):
            a_def, b_def = lt.indexes.get(idx), rt.indexes.get(idx)
            if a_def != b_def:
                yield Change("data", f"{store}.{lt.shown}.indexes.{idx}", "added" if a_def is None else
                             "removed" if b_def is None else "changed", left=a_def, right=b_def, store=store,
                             table=lt.shown, schema=True)


def _decl(col: tuple[str, bool] | None) -> str | None:
    if col is None:
        return None
    return col[0] + (" NOT NULL" if col[1] else "")


class TableDiff:
    """Checksums over key ranges on both servers, bisected down to the differing rows."""

    def __init__(self, store: str, left: Side, right: Side, lt: TableDef, rt: TableDef, scrubbed: set[str],
                 shower: Shower, limit: int | None, pool: ThreadPoolExecutor, include_scrubbed: bool = False,
                 hash_record: bool = False) -> None:
        self.store, self.left, self.right, self.lt, self.rt = store, left, right, lt, rt
        self.hash_record = hash_record
        self.shower, self.limit, self.pool = shower, limit, pool
        rcols = {c for c, _t, _n in rt.columns}
        self.common = [c for c, _t, _n in lt.columns if c in rcols]
        self.scrub_cols = [c for c in self.common if c.lower() in scrubbed]
        # scrubbed columns: one entry per column, or (include_scrubbed) compared row by row
        self.include_scrubbed = include_scrubbed
        self.hidden = [] if include_scrubbed else self.scrub_cols
        self.pk, how = row_key(lt, rt, {c.lower() for c in self.scrub_cols})
        self.nullable = not all(lt.not_null(p) and rt.not_null(p) for p in self.pk)
        self.compare = [c for c in self.common if c not in self.hidden and c not in self.pk]
        self.shown_cols = [c for c in self.common if c not in self.hidden]
        self.group = GroupSummary("data", f"{store}.{lt.shown}")
        if how == "no key":
            self.group.note = "no key: rows compared as a multiset"
        elif how == "scrubbed key":
            self.group.note = "its keys hold a scrubbed column: rows compared as a multiset"
        elif how != "primary key":
            self.group.note = f"no primary key: rows found by the {how}" + (
                ", rows whose key holds NULL compared as a multiset" if self.nullable else "")
        self.literals: tuple[dict[tuple, list[str]], dict[tuple, list[str]]] = ({}, {})
        self.queries = 0

    # expressions -----------------------------------------------------------------------
    def _hashed(self, col: str) -> str:
        """A column as it enters a row hash: by its type's hash function where values that
        print differently hash differently, else as printed (``to_json``, which also tells
        the number 1 from the text '1' where the column's type differs between the sides)."""
        typ = self.lt.col_type(col)
        printed = f"to_json({qi(col)})::text"
        if typ != self.rt.col_type(col):
            return printed
        if not self.hash_record:
            return qi(col)   # inside ROW(...)::text every value is printed by its type
        base = base_type(typ)
        if base in EXACT_HASH or (base == "numeric" and base != typ):
            return qi(col)
        if base in BYTES_HASH:
            return f'({qi(col)} COLLATE "C")'
        return printed

    def _row_hash(self, cols: list[str]) -> str:
        """A 32-bit hash of a row's ``cols``. ``hash_record`` (PostgreSQL 14+) hashes each
        value with its type's hash function, twice as fast as the row's text."""
        if not cols:
            return "hashtext('')"
        values = ", ".join(self._hashed(c) for c in cols)
        return f"hash_record(ROW({values}))" if self.hash_record else f"hashtext(ROW({values})::text)"

    def _key_expr(self) -> str:
        """The key as one text, hashed as bytes (under "C": columns of two collations cannot
        be hashed together, and a nondeterministic one hashes 'abc' as 'ABC')."""
        return " || '|' || ".join(f'coalesce(({qi(p)}::text) COLLATE "C", \'\')' for p in self.pk)

    def _keyed(self) -> str:
        """SQL true for a row its key can find (no NULL in it)."""
        return " AND ".join(f"{qi(p)} IS NOT NULL" for p in self.pk) if self.nullable else "true"

    def _both(self, sql: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The same query on both servers, at the same time."""
        return self._each(sql, sql)

    def _each(self, left_sql: str | None, right_sql: str | None) -> tuple[list[dict[str, Any]],
                                                                          list[dict[str, Any]]]:
        """A query on each server (None: no query, no rows), at the same time."""
        futures: list[Future[list[dict[str, Any]]] | None] = []
        for side, table, sql in ((self.left, self.lt, left_sql), (self.right, self.rt, right_sql)):
            if sql is not None:
                self.queries += 1
                sql = sql.replace("{TL}", ql(table.qname)).replace("{T}", table.qname)
            futures.append(None if sql is None else self.pool.submit(side.query, sql))
        fa, fb = futures
        return (fa.result() if fa else []), (fb.result() if fb else [])

    # the diff ----------------------------------------------------------------------------
    def changes(self) -> Iterator[Change]:
        if not self.pk:
            yield from self._multiset()
        else:
            int_key = len(self.pk) == 1 and {self.lt.col_type(self.pk[0]), self.rt.col_type(self.pk[0])} <= INT_TYPES
            keys = self._int_ranges() if int_key else self._hash_buckets()
            yield from self._rows(keys)
            if self.nullable:   # rows a NULL in their key leaves without identity
                yield from self._multiset(" OR ".join(f"{qi(p)} IS NULL" for p in self.pk))
        if not self.include_scrubbed:
            yield from self._scrub_entries()

    def _checksums(self, where: str, bucket: str, extra_from: str = "", cols: list[str] | None = None,
                   by_hash: int = 0) -> tuple[dict[Any, tuple], dict[Any, tuple]]:
        """Per bucket: rows, and two sums of their hashes (of the key and the compared
        columns, or of ``cols``); ``by_hash`` buckets the rows by their hash instead."""
        h = self._row_hash(self.pk + self.compare if cols is None else cols)
        inner, b = (f"{h} AS h", f"abs(h % {by_hash})") if by_hash else (f"{bucket} AS b, {h} AS h", "b")
        sql = (f"SELECT {b} AS b, count(*) AS n, sum(h::bigint) AS s, bit_xor((h::bigint * 2654435761) % 4294967291) "
               f"AS x FROM (SELECT {inner} FROM {{T}} {extra_from} WHERE {where}) q GROUP BY 1")
        a, b_rows = self._both(sql)
        return ({r["b"]: (r["n"], r["s"], r["x"]) for r in a}, {r["b"]: (r["n"], r["s"], r["x"]) for r in b_rows})

    def _int_ranges(self) -> list[Any]:
        """Differing keys of a table with an integer key: ranges bisected level by level."""
        pk = qi(self.pk[0])
        # the row count only sizes the first pass: the planner's estimate spares a scan
        a, b = self._both(f"SELECT min({pk}) AS lo, max({pk}) AS hi, (SELECT reltuples FROM pg_class "
                          f"WHERE oid = {{TL}}::regclass) AS n FROM {{T}}")
        los = [r["lo"] for r in (a[0], b[0]) if r["lo"] is not None]
        if not los:
            return []
        lo, hi = min(los), max(r["hi"] for r in (a[0], b[0]) if r["hi"] is not None)
        rows = max(a[0]["n"] or 0, b[0]["n"] or 0)
        if rows <= 0:   # never analysed: as many as the key range holds
            rows = hi - lo + 1
        parts = max(1, min(FIRST_SPLIT, math.ceil(rows / LEAF_ROWS)))
        ranges = [(lo, hi)]
        split = parts
        leaves: list[tuple[int, int]] = []
        while ranges:
            if len(ranges) == 1:  # one range (the first pass): constants, no join
                r_lo, r_hi = ranges[0]
                w = max(1, math.ceil((r_hi - r_lo + 1) / split))
                ca, cb = self._checksums(f"{pk} BETWEEN {r_lo} AND {r_hi}", f"({pk} - {r_lo}) / {w}")
            else:
                values = ", ".join(f"({i}, {r_lo}, {r_hi}, {max(1, math.ceil((r_hi - r_lo + 1) / split))})"
                                   for i, (r_lo, r_hi) in enumerate(ranges))
                bucket = f"r.i * {split + 1} + ({pk} - r.lo) / r.w"
                ca, cb = self._checksums(f"{pk} BETWEEN r.lo AND r.hi", bucket,
                                         f"JOIN (VALUES {values}) AS r(i, lo, hi, w) ON true")
            nxt: list[tuple[int, int]] = []
            for bkey in set(ca) | set(cb):
                if ca.get(bkey) == cb.get(bkey):
                    continue
                i, sub = divmod(int(bkey), split + 1)
                r_lo, r_hi = ranges[i]
                w = max(1, math.ceil((r_hi - r_lo + 1) / split))
                s_lo, s_hi = r_lo + sub * w, min(r_hi, r_lo + (sub + 1) * w - 1)
                n = max(ca.get(bkey, (0,))[0], cb.get(bkey, (0,))[0])
                (leaves if n <= LEAF_ROWS or s_lo == s_hi else nxt).append((s_lo, s_hi))
            ranges, split = nxt, SPLIT
        if not leaves:
            return []
        where = " OR ".join(f"{pk} BETWEEN {x} AND {y}" for x, y in sorted(leaves))
        return self._leaf_keys(where)

    def _hash_buckets(self) -> list[Any]:
        """Any other key: rows spread over buckets by a hash of the key, the same on both sides."""
        a, b = self._both(f"SELECT count(*) AS n FROM {{T}} WHERE {self._keyed()}")
        rows = max(a[0]["n"], b[0]["n"])
        parts = max(1, math.ceil(rows / LEAF_ROWS))
        bucket = f"abs(hashtext({self._key_expr()}) % {parts})"
        ca, cb = self._checksums(self._keyed(), bucket)
        diff = [k for k in set(ca) | set(cb) if ca.get(k) != cb.get(k)]
        if not diff:
            return []
        return self._leaf_keys(f"{bucket} IN ({', '.join(str(int(k)) for k in diff)})")

    def _leaf_keys(self, where: str) -> list[tuple]:
        """The keys (as printed) whose rows differ; ``literals`` keeps each side's own text of
        them, to find the rows again on that side."""
        keys = ", ".join(f"{qi(p)}::text AS t{i}, to_json({qi(p)})::text AS j{i}" for i, p in enumerate(self.pk))
        a, b = self._both(f"SELECT {keys}, {self._row_hash(self.pk + self.compare)} AS h FROM {{T}} "
                          f"WHERE ({where}) AND {self._keyed()}")
        n = range(len(self.pk))
        hashes: list[dict[tuple, Any]] = [{}, {}]
        for rows, h, literals in zip((a, b), hashes, self.literals, strict=True):
            for r in rows:
                key = tuple(r[f"j{i}"] for i in n)
                h[key] = r["h"]
                literals[key] = [r[f"t{i}"] for i in n]
        ha, hb = hashes
        return sorted((k for k in set(ha) | set(hb) if ha.get(k) != hb.get(k)), key=_printed_order)

    def _select(self) -> str:
        """Every shown column, as printed (``c0``, ``c1``, ...: a column's name may be anything)."""
        return ", ".join(f"to_json({qi(c)})::text AS c{i}" for i, c in enumerate(self.shown_cols))

    def _find(self, keys: list[tuple], literals: dict[tuple, list[str]]) -> str | None:
        """A query of the rows of ``keys`` on one side, by the key's index (None: none there).
        ``=`` may find more (another case, another scale): they are told apart as printed."""
        conds = [" AND ".join(f"{qi(p)} = {ql(v)}" for p, v in zip(self.pk, literals[k], strict=True))
                 for k in keys if k in literals]
        return f"SELECT {self._select()} FROM {{T}} WHERE ({') OR ('.join(conds)})" if conds else None

    def _rows(self, keys: list[tuple]) -> Iterator[Change]:
        cols = self.shown_cols
        at = {c: f"c{i}" for i, c in enumerate(cols)}
        for i in range(0, len(keys), 1000):
            chunk = keys[i:i + 1000]
            a, b = self._each(self._find(chunk, self.literals[0]), self._find(chunk, self.literals[1]))
            ra = {tuple(r[at[p]] for p in self.pk): r for r in a}
            rb = {tuple(r[at[p]] for p in self.pk): r for r in b}
            for k in chunk:
                left, right = ra.get(k), rb.get(k)
                if left is None and right is None:
                    continue
                shown_key, base, masked_key = self._key(k)
                if right is None or left is None:
                    kind = "removed" if right is None else "added"
                    ch = Change("data", base, kind, store=self.store, table=self.lt.shown, key=shown_key)
                    if self._emit(ch):
                        t = self.lt if right is None else self.rt
                        values = [shown((left or right)[at[c]], t.col_type(c)) for c in cols]  # type: ignore[index]
                        row, m = self.shower.row(cols, values)
                        ch.show_row(row, m or masked_key)
                        yield ch
                    continue
                for c in self.compare:
                    if left[at[c]] == right[at[c]]:
                        continue
                    ch = Change("data", f"{base}.{c}", "changed", store=self.store, table=self.lt.shown,
                                key=shown_key, column=c, intent="scrub" if c in self.scrub_cols else None)
                    if self._emit(ch):
                        was, now = shown_pair(left[at[c]], right[at[c]], self.lt.col_type(c), self.rt.col_type(c))
                        (ch.left, m1), (ch.right, m2) = self.shower.value(c, was), self.shower.value(c, now)
                        ch.masked = m1 or m2 or masked_key
                        yield ch

    def _key(self, printed: tuple) -> tuple[list[Any], str, bool]:
        t = self.lt if printed in self.literals[0] else self.rt
        shown_key, masked = [], False
        for p, v in zip(self.pk, printed, strict=True):
            s, m = self.shower.value(p, shown(v, t.col_type(p)))
            shown_key.append(s)
            masked = masked or m
        return shown_key, f"{self.store}.{self.lt.shown}[{','.join(key_text(v) for v in shown_key)}]", masked

    def _multiset(self, where: str = "true") -> Iterator[Change]:
        """Rows without a key (a table without one, or rows whose key holds NULL) compared
        as multisets: rows bucketed by their hash, the differing buckets read grouped by
        value with their counts, and compared as printed."""
        cols = self.shown_cols
        if not cols:
            return
        a, b = self._both(f"SELECT count(*) AS n FROM {{T}} WHERE {where}")
        parts = max(1, math.ceil(max(a[0]["n"], b[0]["n"]) / LEAF_ROWS))
        ca, cb = self._checksums(where, "", cols=cols, by_hash=parts)
        diff = [k for k in set(ca) | set(cb) if ca.get(k) != cb.get(k)]
        if not diff:
            return
        groups = ", ".join(str(i + 1) for i in range(len(cols)))
        ra, rb = self._both(f"SELECT {self._select()}, count(*) AS n FROM {{T}} WHERE ({where}) AND "
                            f"abs({self._row_hash(cols)} % {parts}) IN ({', '.join(str(int(k)) for k in diff)}) "
                            f"GROUP BY {groups}")
        counts: list[dict[tuple, int]] = [{}, {}]
        for rows, count in zip((ra, rb), counts, strict=True):
            for r in rows:
                count[tuple(r[f"c{i}"] for i in range(len(cols)))] = r["n"]
        left, right = counts
        for row in sorted(set(left) | set(right), key=_printed_order):
            n = right.get(row, 0) - left.get(row, 0)
            if n == 0:
                continue
            ch = Change("data", f"{self.store}.{self.lt.shown}", "added" if n > 0 else "removed", store=self.store,
                        table=self.lt.shown, count=abs(n))
            if self._emit(ch):
                t = self.rt if n > 0 else self.lt
                ch.show_row(*self.shower.row(cols, [shown(v, t.col_type(c)) for c, v in zip(cols, row, strict=True)]))
                yield ch

    def _scrub_entries(self) -> Iterator[Change]:
        if not self.scrub_cols:
            return
        sums = ", ".join(f"sum(hashtext({qi(c)}::text)::bigint) AS {qi(c)}" for c in self.scrub_cols)
        a, b = self._both(f"SELECT {sums} FROM {{T}}")
        for c in self.scrub_cols:
            if a[0][c] != b[0][c]:
                yield Change("data", f"{self.store}.{self.lt.shown}.{c}", "changed", intent="scrub",
                             store=self.store, table=self.lt.shown, column=c)

    def _emit(self, change: Change) -> bool:
        return self.group.count(change.kind, self.limit)


class Numeric(Decimal):
    """A numeric as PostgreSQL prints it, in every output: its digits and its scale, never
    an exponent (``0.00000000000000000000``, where a Decimal says ``0E-20``)."""

    def __str__(self) -> str:
        return format(self, "f")

    def __format__(self, spec: str, *args: Any) -> str:
        return super().__format__(spec or "f", *args)


def shown(printed: str | None, typ: str = "") -> Any:
    """A value as ``to_json`` printed it, as a change holds it. A numeric is a ``Numeric``,
    its digits and scale as printed (JSON shows it as a string: ``"1.00"``); a float is a
    float (``-0`` is ``-0.0``; NaN and the infinities stay as printed); a number of any
    other type is an int or a float where one holds it as printed, else a ``Numeric``. A json
    document that is ``null`` is the text ``null``: None is SQL's NULL."""
    if printed is None or printed == "null":
        return printed
    value = json.loads(printed)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    base = base_type(typ)
    if base == "numeric":
        return Numeric(printed)
    if base in FLOAT_TYPES or "e" in printed or "E" in printed or printed == "-0":   # only floats print these
        return float(printed)
    if repr(value) == printed:
        return value
    return Numeric(printed)


def base_type(typ: str) -> str:
    """A type without its modifiers: ``numeric(12,2)`` is ``numeric``."""
    return re.sub(r"\(\d+(,\d+)?\)", "", typ)


def shown_pair(left: str | None, right: str | None, left_type: str, right_type: str) -> tuple[Any, Any]:
    """Two values that differ as printed, shown: as PostgreSQL printed them where they
    would look alike otherwise (json that differs in spaces, a scale inside an array)."""
    was, now = shown(left, left_type), shown(right, right_type)
    if repr(was) == repr(now):
        return left, right
    return was, now


def _printed_order(printed: tuple) -> tuple:
    """The order of keys or rows (as printed) in the report: NULLs last, numbers by value."""
    out = []
    for p in printed:
        v = shown(p)
        number = isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)
        out.append((v is None, not number, v if number else str(v), p or ""))
    return tuple(out)


def diff_databases(store: str, left: Side, right: Side, scrubbed: dict[str, set[str]] | None = None,
                   shower: Shower | None = None, limit: int | None = None,
                   tables: Callable[[str], bool] | None = None,
                   include_scrubbed: bool = False) -> tuple[list[Change], list[GroupSummary]]:
    """All changes from ``left`` to ``right`` (schema first, then rows, table by table).

    ``scrubbed`` maps a lower-case table name to its lower-case scrubbed columns (one
    ``scrub`` entry per column, or row by row with ``include_scrubbed``); ``tables`` (a
    predicate on the table's shown name) limits the tables compared. A table whose
    checksums agree is a group with the status ``same``."""
    shower = shower or Shower()
    scrubbed = scrubbed or {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        versions = list(pool.map(Side.prepare, (left, right)))
        hash_record = min(versions) >= 140000
        fl, fr = pool.submit(read_schema, left), pool.submit(read_schema, right)
        ls, rs = fl.result(), fr.result()
        changes = list(schema_changes(store, ls, rs))
        groups = []
        for key in sorted(set(ls) & set(rs)):
            lt, rt = ls[key], rs[key]
            if tables is not None and not tables(lt.shown):
                continue
            cols = scrubbed.get(lt.shown.lower(), set()) | scrubbed.get(f"{lt.schema}.{lt.name}".lower(), set())
            td = TableDiff(store, left, right, lt, rt, cols, shower, limit, pool, include_scrubbed, hash_record)
            t0 = time.perf_counter()
            found = list(td.changes())
            td.group.seconds = time.perf_counter() - t0
            if not found and not td.group.total:
                td.group.status = "same"
            changes.extend(found)
            groups.append(td.group)
    return changes, groups
