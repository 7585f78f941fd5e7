"""The data diff of one PostgreSQL database on two servers (prod's and a clone's).

Rows are never loaded to be compared in Python: each server sums row hashes over ranges
of the primary key, both at once; only ranges whose checksums differ are split again
(bisected), until they are small enough to compare row hashes, and only the rows that
differ are read. This is the method of data-diff and reladiff; a first pass cuts the
key space into many ranges at once so that 100 changed rows in a million take three
round trips and one scan of the table per server.

Scrubbed columns are left out of the row hashes: a scrubbed column is one change with
the intent ``scrub`` per column (when its values differ), never one per row. The schema
is compared from the catalogs. The changes are ``workbench.diff.model.Change`` objects of
the same shape as the SQLite diff's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from workbench.diff.model import Change, GroupSummary
from workbench.diff.values import Shower, key_text
from workbench.errors import BackendError
from workbench.psql import PgServer, qi, ql

FIRST_SPLIT = 2000        # ranges of the first pass (at most)
SPLIT = 32                # ranges a differing range is cut into
LEAF_ROWS = 256           # a range with at most this many rows is compared row by row
INT_TYPES = {"smallint", "integer", "bigint"}


@dataclass
class TableDef:
    schema: str
    name: str
    columns: list[tuple[str, str, bool]]            # name, type, not null
    pk: list[str]
    indexes: dict[str, str] = field(default_factory=dict)
    hashable: set[str] = field(default_factory=set)  # columns whose type has a default hash function

    @property
    def qname(self) -> str:
        return f"{qi(self.schema)}.{qi(self.name)}"

    @property
    def shown(self) -> str:
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"

    def col_type(self, col: str) -> str:
        return next((t for c, t, _n in self.columns if c == col), "")


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
        return self.server.version()


def read_schema(side: Side) -> dict[tuple[str, str], TableDef]:
    rows = side.query(
        "SELECT n.nspname AS s, c.relname AS t, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS typ, "
        "a.attnotnull AS nn, a.attnum AS pos, EXISTS (SELECT 1 FROM pg_opclass oc JOIN pg_am am ON "
        "am.oid = oc.opcmethod WHERE am.amname = 'hash' AND oc.opcdefault AND oc.opcintype = a.atttypid) AS hashable "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2, a.attnum")
    tables: dict[tuple[str, str], TableDef] = {}
    for r in rows:
        t = tables.setdefault((r["s"], r["t"]), TableDef(r["s"], r["t"], [], []))
        t.columns.append((r["col"], r["typ"], r["nn"]))
        if r["hashable"]:
            t.hashable.add(r["col"])
    pks = side.query(
        "SELECT n.nspname AS s, c.relname AS t, a.attname AS col, k.ord AS ord FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum WHERE i.indisprimary ORDER BY 1, 2, 4")
    for r in pks:
        if (r["s"], r["t"]) in tables:
            tables[(r["s"], r["t"])].pk.append(r["col"])
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
                yield Change("data", f"{store}.{lt.shown}.indexs.{idx}", "added" if a_def is None else
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
        self.compare = [c for c in self.common if c not in self.hidden and c not in lt.pk]
        self.pk = lt.pk if lt.pk == rt.pk else []
        self.group = GroupSummary("data", f"{store}.{lt.shown}")
        self.queries = 0

    # expressions -----------------------------------------------------------------------
    def _row_hash(self) -> str:
        """A 32-bit hash of the compared columns of a row. ``hash_record`` (PostgreSQL 14+)
        hashes each value with its type's hash function, twice as fast as the row's text;
        a column whose type has none is hashed as text."""
        cols = self.compare or self.pk
        if not cols:
            return "hashtext('')"
        if self.hash_record:
            hashable = self.lt.hashable & self.rt.hashable
            return "hash_record(ROW(" + ", ".join(qi(c) if c in hashable else f"{qi(c)}::text" for c in cols) + "))"
        return "hashtext(ROW(" + ", ".join(qi(c) for c in cols) + ")::text)"

    def _key_expr(self) -> str:
        return " || '|' || ".join(f"coalesce({qi(p)}::text, '')" for p in self.pk)

    def _both(self, sql: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The same query on both servers, at the same time."""
        self.queries += 2
        fa = self.pool.submit(self.left.query, sql.replace("{TL}", ql(self.lt.qname)).replace("{T}", self.lt.qname))
        fb = self.pool.submit(self.right.query, sql.replace("{TL}", ql(self.rt.qname)).replace("{T}", self.rt.qname))
        return fa.result(), fb.result()

    # the diff ----------------------------------------------------------------------------
    def changes(self) -> Iterator[Change]:
        if not self.pk:
            yield from self._multiset()
        else:
            int_key = len(self.pk) == 1 and self.lt.col_type(self.pk[0]) in INT_TYPES
            keys = self._int_ranges() if int_key else self._hash_buckets()
            yield from self._rows(keys)
        if not self.include_scrubbed:
            yield from self._scrub_entries()

    def _checksums(self, where: str, bucket: str, extra_from: str = "") -> tuple[dict[Any, tuple], dict[Any, tuple]]:
        h = self._row_hash()
        sql = (f"SELECT b, count(*) AS n, sum(h::bigint) AS s, bit_xor((h::bigint * 2654435761) % 4294967291) AS x "
               f"FROM (SELECT {bucket} AS b, {h} AS h FROM {{T}} {extra_from} WHERE {where}) q GROUP BY 1")
        a, b = self._both(sql)
        return ({r["b"]: (r["n"], r["s"], r["x"]) for r in a}, {r["b"]: (r["n"], r["s"], r["x"]) for r in b})

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
        a, b = self._both("SELECT count(*) AS n FROM {T}")
        rows = max(a[0]["n"], b[0]["n"])
        parts = max(1, math.ceil(rows / LEAF_ROWS))
        bucket = f"abs(hashtext({self._key_expr()}) % {parts})"
        ca, cb = self._checksums("true", bucket)
        diff = [k for k in set(ca) | set(cb) if ca.get(k) != cb.get(k)]
        if not diff:
            return []
        return self._leaf_keys(f"{bucket} IN ({', '.join(str(int(k)) for k in diff)})")

    def _leaf_keys(self, where: str) -> list[Any]:
        keys = ", ".join(f"{qi(p)} AS {qi('k' + str(i))}" for i, p in enumerate(self.pk))
        a, b = self._both(f"SELECT {keys}, {self._row_hash()} AS h FROM {{T}} WHERE {where}")
        n = len(self.pk)
        ha = {tuple(r[f"k{i}"] for i in range(n)): r["h"] for r in a}
        hb = {tuple(r[f"k{i}"] for i in range(n)): r["h"] for r in b}
        return sorted((k for k in set(ha) | set(hb) if ha.get(k) != hb.get(k)), key=_sort_key)

    def _rows(self, keys: list[tuple]) -> Iterator[Change]:
        if not keys:
            return
        g = self.group
        cols = [c for c in self.common if c not in self.hidden]
        for i in range(0, len(keys), 1000):
            chunk = keys[i:i + 1000]
            cond = " OR ".join("(" + " AND ".join(f"{qi(p)} = {ql(v)}" for p, v in zip(self.pk, k, strict=True)) + ")"
                               for k in chunk)
            sel = ", ".join(qi(c) for c in cols)
            a, b = self._both(f"SELECT {sel} FROM {{T}} WHERE {cond}")
            ra = {tuple(r[p] for p in self.pk): r for r in a}
            rb = {tuple(r[p] for p in self.pk): r for r in b}
            for k in chunk:
                left, right = ra.get(k), rb.get(k)
                shown_key, base, masked_key = self._key(list(k))
                if left is None and right is None:
                    continue
                if right is None or left is None:
                    kind = "removed" if right is None else "added"
                    ch = Change("data", base, kind, store=self.store, table=self.lt.shown, key=shown_key)
                    if self._emit(ch):
                        row, m = self.shower.row(cols, [(left or right)[c] for c in cols])  # type: ignore[index]
                        ch.show_row(row, m or masked_key)
                        yield ch
                    continue
                for c in self.compare:
                    if left[c] == right[c]:
                        continue
                    ch = Change("data", f"{base}.{c}", "changed", store=self.store, table=self.lt.shown,
                                key=shown_key, column=c, intent="scrub" if c in self.scrub_cols else None)
                    if self._emit(ch):
                        (ch.left, m1), (ch.right, m2) = self.shower.value(c, left[c]), self.shower.value(c, right[c])
                        ch.masked = m1 or m2 or masked_key
                        yield ch
        g.status = "compared"

    def _key(self, values: list[Any]) -> tuple[list[Any], str, bool]:
        shown, masked = [], False
        for p, v in zip(self.pk, values, strict=True):
            s, m = self.shower.value(p, v)
            shown.append(s)
            masked = masked or m
        return shown, f"{self.store}.{self.lt.shown}[{','.join(key_text(v) for v in shown)}]", masked

    def _multiset(self) -> Iterator[Change]:
        """A table without a primary key: rows compared as multisets, by row hash."""
        cols = [c for c in self.common if c not in self.hidden]
        if not cols:
            return
        row = "ROW(" + ", ".join(qi(c) for c in cols) + ")::text"
        a, b = self._both(f"SELECT hashtext({row}) AS h, count(*) AS n FROM {{T}} GROUP BY 1")
        ca, cb = {r["h"]: r["n"] for r in a}, {r["h"]: r["n"] for r in b}
        diff = [h for h in set(ca) | set(cb) if ca.get(h, 0) != cb.get(h, 0)]
        if not diff:
            return
        sel = ", ".join(qi(c) for c in cols)
        where = f"hashtext({row}) IN ({', '.join(str(h) for h in diff)})"
        ra, rb = self._both(f"SELECT DISTINCT ON (hashtext({row})) hashtext({row}) AS repro_h, {sel} FROM {{T}} "
                            f"WHERE {where}")
        rows = {r["repro_h"]: r for r in ra + rb}
        for h in sorted(diff):
            n = cb.get(h, 0) - ca.get(h, 0)
            kind = "added" if n > 0 else "removed"
            ch = Change("data", f"{self.store}.{self.lt.shown}", kind, store=self.store, table=self.lt.shown,
                        count=abs(n))
            if self._emit(ch):
                ch.show_row(*self.shower.row(cols, [rows[h][c] for c in cols]))
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


def _sort_key(k: tuple) -> tuple:
    return tuple((v is None, str(type(v)), v if isinstance(v, (int, float)) else str(v)) for v in k)


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
