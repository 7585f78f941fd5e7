"""Diff of two SQLite files: schema, then rows, computed in SQL and never loaded whole.

Both files are opened read-only on one connection (the left as ``main``, the right
attached as ``r``). Which tables changed, and which rowid ranges of them, is told first
from the pages (``sqlitepages``): a clone copied from prod shares every unchanged page,
so a table nobody wrote is skipped after reading a few interior pages, and a table with
a hundred changed rows is compared only on the leaves that hold them.

Values are compared exactly: bytes under BINARY collation (a NOCASE column still shows a
change of case) and, where a column can hold both, storage class (``1`` is not ``1.0``,
``1`` is not ``'1'``). Rows are matched on the primary key, a key being equal only when
its values are (same bytes, same storage class): a key whose case or storage class
changed is a row removed and a row added. A row whose key holds NULL (SQLite allows it
in a composite key, or in ``INTEGER PRIMARY KEY DESC``) identifies nothing: such rows are
compared as rows of a table without a primary key are, as multisets (grouped by every
column with their counts, so a duplicated row counts). TEXT that is not valid UTF-8 is
shown escaped (``values.RawText``). Changes stream out as the cursor finds them; past a
per-table limit they are only counted.

Run ``python -m workbench.diff.sqlite LEFT.db RIGHT.db [--json] [--limit N]`` to diff
two files directly (the benchmark does).

Longer than most modules (about 700 lines), on purpose: schema, keyed rows, rows keyed by
nothing or by NULL (multisets), storage classes and text that is not UTF-8 are the one
question of what differs between two SQLite files; the pages' own reading is in sqlitepages.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.diff import cellwalk
from workbench.diff import sqlitepages as pages
from workbench.diff.model import Change, GroupSummary
from workbench.diff.values import BlobText, Shower, decode_text, key_text
from workbench.errors import NotFound, Refused

INTERNAL = re.compile(r"^sqlite_", re.IGNORECASE)
_KEYS = "temp.repro_diff_keys"
_PLURAL = {"index": "indexes", "view": "views", "trigger": "triggers"}   # in paths: db.t.indexes.t_name
_RANGES = "temp.repro_diff_ranges"


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Column:
    name: str
    type: str
    notnull: bool
    default: str | None
    pk: int
    hidden: int = 0

    def declaration(self) -> str:
        out = self.type or "(no type)"
        if self.notnull:
            out += " NOT NULL"
        if self.default is not None:
            out += f" DEFAULT {self.default}"
        if self.pk:
            out += " PRIMARY KEY" if self.pk == 1 else f" PRIMARY KEY ({self.pk})"
        return out


@dataclass
class Table:
    name: str
    sql: str
    rootpage: int
    columns: list[Column] = field(default_factory=list)
    without_rowid: bool = False
    virtual: bool = False

    @property
    def pk(self) -> list[str]:
        return [c.name for c in sorted((c for c in self.columns if c.pk), key=lambda c: c.pk)]

    def column(self, name: str) -> Column | None:
        low = name.lower()
        return next((c for c in self.columns if c.name.lower() == low), None)

    @property
    def rowid(self) -> str | None:
        """A name that reaches the rowid (a column may shadow ``rowid``), or None."""
        if self.without_rowid or self.virtual:
            return None
        taken = {c.name.lower() for c in self.columns}
        return next((n for n in ("rowid", "_rowid_", "oid") if n not in taken), None)


@dataclass
class Schema:
    tables: dict[str, Table] = field(default_factory=dict)          # lower-case name -> table
    others: dict[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)
    # (type, name) -> (tbl_name, sql) for indexes, views and triggers
    roots: dict[str, int] = field(default_factory=dict)              # every b-tree: name -> root page
    owners: dict[str, str] = field(default_factory=dict)             # b-tree name -> its table


def read_schema(conn: sqlite3.Connection, schema: str) -> Schema:
    out = Schema()
    rows = conn.execute(f"SELECT type, name, tbl_name, rootpage, sql FROM {schema}.sqlite_schema").fetchall()
    for kind, name, tbl, root, sql in rows:
        if root:
            out.roots[name] = root
            out.owners[name] = tbl
        if kind == "table":
            virtual = bool(sql and re.match(r"\s*CREATE\s+VIRTUAL\b", sql, re.IGNORECASE))
            tail = sql[sql.rfind(")"):] if sql else ""
            t = Table(name=name, sql=sql or "", rootpage=root or 0, virtual=virtual,
                      without_rowid=bool(re.search(r"\bWITHOUT\s+ROWID\b", tail, re.IGNORECASE)))
            info = conn.execute(f"PRAGMA {schema}.table_xinfo({q(name)})").fetchall()
            t.columns = [Column(name=r[1], type=r[2] or "", notnull=bool(r[3]), default=r[4], pk=r[5],
                                hidden=r[6]) for r in info if r[6] != 1]
            out.tables[name.lower()] = t
        elif not name.startswith("sqlite_autoindex_"):
            out.others[(kind, name)] = (tbl, sql)
    return out


class _Connection:
    """Both files, read-only, on one connection, inside one read transaction."""

    def __init__(self, left: str, right: str, *, left_immutable: bool = False,
                 right_immutable: bool = False) -> None:
        for p in (left, right):
            if not Path(p).is_file():
                raise NotFound(f"SQLite file {p} does not exist.",
                               "Check the store's path in repro.yaml. A clone's copy deleted by hand comes back "
                               "with a reset to one of its snapshots: repro-tui reset CLONE")
        self.conn = sqlite3.connect(_uri(left, left_immutable), uri=True, isolation_level=None,
                                    check_same_thread=False)
        self.conn.text_factory = decode_text   # TEXT that is not UTF-8 is shown escaped, not an error
        try:
            self.conn.execute("ATTACH DATABASE ? AS r", (_uri(right, right_immutable),))
            self.conn.execute("PRAGMA busy_timeout = 5000")
            self.conn.execute("BEGIN")
            # take the read snapshot of both files now, before their pages are read
            self.conn.execute("SELECT count(*) FROM main.sqlite_schema").fetchone()
            self.conn.execute("SELECT count(*) FROM r.sqlite_schema").fetchone()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise Refused(f"cannot read {left} or {right}: {exc}.",
                          "Check that both files are SQLite databases.") from None

    def close(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        self.conn.close()


def _uri(path: str, immutable: bool) -> str:
    uri = Path(path).absolute().as_uri()
    return uri + ("?mode=ro&immutable=1" if immutable else "?mode=ro")


@dataclass
class PagePlan:
    """What the page comparison found, per table: ``[]`` same, rowid ranges, or None (whole
    table); ``keys`` holds, for a WITHOUT ROWID table, the keys of the rows that can differ."""

    same_file: bool = False
    ranges: dict[str, list[tuple[int, int]] | None] = field(default_factory=dict)
    keys: dict[str, tuple[pages.KeySet, pages.KeySet]] = field(default_factory=dict)
    note: str | None = None
    seconds: float = 0.0


def plan_from_pages(left: str, right: str, ls: Schema, rs: Schema, conn: sqlite3.Connection) -> PagePlan:
    """Tell from the two files' pages which tables changed and where (see ``sqlitepages``)."""
    t0 = time.perf_counter()
    plan = PagePlan()
    common = [n for n in ls.tables if n in rs.tables]
    try:
        with pages.PageReader(left) as a, pages.PageReader(right) as b:
            if a.page_size != b.page_size or a.header.encoding != b.header.encoding:
                plan.note = "page size or text encoding differs: every table compared row by row"
                plan.ranges = dict.fromkeys(common)
                return plan
            diff = pages.differing_pages(a, b)
            if not diff:
                plan.same_file = True
                plan.ranges = {n: [] for n in common}
                return plan
            trees_a = {name: pages.walk_tree(a, root) for name, root in ls.roots.items()}
            trees_b = {name: pages.walk_tree(b, root) for name, root in rs.roots.items()}
            trees_a["sqlite_schema"] = pages.walk_tree(a, 1)
            trees_b["sqlite_schema"] = pages.walk_tree(b, 1)
            known: set[int] = set()
            for reader, trees in ((a, trees_a), (b, trees_b)):
                for t in trees.values():
                    known |= t.pages
                known |= pages.freelist_pages(reader) | pages.bookkeeping_pages(reader)
            whole = set()
            stray = diff - known
            if stray:   # overflow pages: find their owners the slow way
                whole = _overflow_owners(conn, stray, ls, rs)
            for n in common:
                lt, rt = ls.tables[n], rs.tables[n]
                ta, tb = trees_a.get(lt.name), trees_b.get(rt.name)
                if lt.virtual or rt.virtual:
                    plan.ranges[n] = []
                elif ta is None or tb is None or ta.index != tb.index or not same_reading(lt, rt):
                    plan.ranges[n] = None
                elif not ta.index and n in whole:   # an overflow page changed: every cell read, with its overflow
                    plan.ranges[n] = cellwalk.changed_ranges(a, b, ta.order, tb.order)
                elif n in whole:
                    plan.ranges[n] = None
                elif not ta.index:
                    plan.ranges[n] = pages.changed_ranges(a, b, ta, tb, diff, cellwalk.changed_ranges)
                else:
                    keys = _changed_keys(conn, a, b, ta, tb, diff, lt, rt)
                    plan.ranges[n] = None if keys is None or any(keys) else []
                    if keys is not None and any(keys):
                        plan.keys[n] = keys
    except pages.NotSQLite as exc:
        plan.note = f"pages not comparable ({exc}): every table compared row by row"
        plan.ranges = dict.fromkeys(common)
    finally:
        plan.seconds = time.perf_counter() - t0
    return plan


def same_reading(lt: Table, rt: Table) -> bool:
    """Whether the same stored record reads as the same row in both tables' definitions,
    so that equal pages or cells mean equal rows. Not when a column moved, a default that
    fills a column missing from older records differs, or a column is generated (its
    expression, not the record, gives its value): such tables are compared row by row."""
    if _norm_sql(lt.sql) == _norm_sql(rt.sql):
        return True
    if [p.lower() for p in lt.pk] != [p.lower() for p in rt.pk]:
        return False
    if any(c.hidden in (2, 3) for c in lt.columns + rt.columns):
        return False
    return all(x.name.lower() == y.name.lower() and x.default == y.default
               for x, y in zip(lt.columns, rt.columns, strict=False))


def _changed_keys(conn: sqlite3.Connection, a: pages.PageReader, b: pages.PageReader, ta: pages.Tree,
                  tb: pages.Tree, diff: set[int], lt: Table, rt: Table) -> tuple[pages.KeySet, pages.KeySet] | None:
    """Keys of a WITHOUT ROWID table's rows that can differ, per side; None: compare it whole."""
    if not (lt.without_rowid and rt.without_rowid) or [p.lower() for p in lt.pk] != [p.lower() for p in rt.pk]:
        return None if ta.pages != tb.pages or ta.pages & diff else (pages.KeySet(), pages.KeySet())
    ordered = not (key_info(conn, "main", lt).desc or key_info(conn, "r", rt).desc)
    return pages.changed_keys(a, b, ta, tb, diff, len(lt.pk), ordered)


def _overflow_owners(conn: sqlite3.Connection, stray: set[int], ls: Schema, rs: Schema) -> set[str]:
    owners: set[str] = set()
    wanted = sorted(stray)
    for schema, s in (("main", ls), ("r", rs)):
        for (name,) in conn.execute(
                f"SELECT DISTINCT name FROM dbstat('{schema}') WHERE pageno IN ({','.join('?' * len(wanted))})",
                wanted):
            owners.add(s.owners.get(name, name).lower())
    return owners


# --- the diff ------------------------------------------------------------------------

@dataclass
class Options:
    store: str
    scrubbed: dict[str, set[str]] = field(default_factory=dict)   # lower table -> lower columns
    include_scrubbed: bool = False
    limit: int | None = None
    shower: Shower = field(default_factory=Shower)
    left_immutable: bool = False
    right_immutable: bool = False


class SqliteDiff:
    """The diff of one pair of SQLite files, as a stream of changes.

    Iterate ``changes()``; afterwards ``groups`` holds one summary per table (how it was
    decided, counts, how many changes a limit left out) and ``same`` tells whether the
    two files were found identical without reading a row."""

    def __init__(self, left: str, right: str, options: Options) -> None:
        self.left, self.right, self.o = left, right, options
        self.groups: list[GroupSummary] = []
        self.plan: PagePlan | None = None
        self.same = False

    def changes(self) -> Iterator[Change]:
        c = _Connection(self.left, self.right, left_immutable=self.o.left_immutable,
                        right_immutable=self.o.right_immutable)
        try:
            ls, rs = read_schema(c.conn, "main"), read_schema(c.conn, "r")
            yield from schema_changes(self.o, ls, rs)
            self.plan = plan_from_pages(self.left, self.right, ls, rs, c.conn)
            self.same = self.plan.same_file
            for n, lt in ls.tables.items():
                if n not in rs.tables or INTERNAL.match(lt.name):
                    continue
                rt = rs.tables[n]
                g = GroupSummary("data", f"{self.o.store}.{lt.name}")
                self.groups.append(g)
                t0 = time.perf_counter()
                ranges = self.plan.ranges.get(n)
                if ranges == []:
                    g.status = "same"
                elif lt.virtual or rt.virtual:
                    g.status, g.note = "skipped", "virtual table: schema only"
                else:
                    yield from TableDiff(c.conn, self.o, lt, rt, ranges, g, self.plan.keys.get(n)).changes()
                g.seconds = time.perf_counter() - t0
        finally:
            c.close()


def schema_changes(o: Options, ls: Schema, rs: Schema) -> Iterator[Change]:
    store = o.store
    for n in sorted(set(ls.tables) | set(rs.tables)):
        lt, rt = ls.tables.get(n), rs.tables.get(n)
        if lt is None or rt is None:
            t = lt or rt
            assert t is not None
            if INTERNAL.match(t.name):
                continue
            cols = [c.name for c in t.columns]
            yield Change("data", f"{store}.{t.name}", "removed" if rt is None else "added",
                         left={"columns": cols} if lt else None, right={"columns": cols} if rt else None,
                         store=store, table=t.name, schema=True)
            continue
        if INTERNAL.match(lt.name):
            continue
        for name in _ordered_union([c.name for c in lt.columns], [c.name for c in rt.columns]):
            lc, rc = lt.column(name), rt.column(name)
            if lc is not None and rc is not None and lc.declaration() == rc.declaration():
                continue
            kind = "added" if lc is None else "removed" if rc is None else "changed"
            yield Change("data", f"{store}.{lt.name}.{name}", kind, left=lc.declaration() if lc else None,
                         right=rc.declaration() if rc else None, store=store, table=lt.name, column=name,
                         schema=True)
        if lt.without_rowid != rt.without_rowid:
            yield Change("data", f"{store}.{lt.name}", "changed",
                         left="WITHOUT ROWID" if lt.without_rowid else "rowid table",
                         right="WITHOUT ROWID" if rt.without_rowid else "rowid table",
                         store=store, table=lt.name, schema=True)
    for key in sorted(set(ls.others) | set(rs.others)):
        kind_name, name = key
        lo, ro = ls.others.get(key), rs.others.get(key)
        if lo == ro:
            continue
        a, b = (lo[1] if lo else None), (ro[1] if ro else None)
        if a is not None and b is not None and _norm_sql(a) == _norm_sql(b) and lo and ro and lo[0] == ro[0]:
            continue
        tbl = (lo or ro)[0]  # type: ignore[index]
        yield Change("data", f"{store}.{tbl}.{_PLURAL[kind_name]}.{name}",
                     "added" if lo is None else "removed" if ro is None else "changed",
                     left=a, right=b, store=store, table=tbl, schema=True)


def _norm_sql(sql: str) -> str:
    return " ".join(sql.split())


def _ordered_union(a: list[str], b: list[str]) -> list[str]:
    seen = {x.lower() for x in a}
    return a + [x for x in b if x.lower() not in seen]


def affinity(declared: str) -> str:
    """The affinity SQLite gives a column declared with this type (its rules, in order)."""
    t = declared.upper()
    if "INT" in t:
        return "INTEGER"
    if "CHAR" in t or "CLOB" in t or "TEXT" in t:
        return "TEXT"
    if "BLOB" in t or not t:
        return "BLOB"
    if "REAL" in t or "FLOA" in t or "DOUB" in t:
        return "REAL"
    return "NUMERIC"


def mixed_classes(left: Column | None, right: Column | None) -> bool:
    """True when the two columns can hold values SQLite calls equal across storage classes.

    A column with INTEGER, NUMERIC, REAL or TEXT affinity converts what it stores (``1.0``
    becomes ``1``, ``1`` becomes ``'1'``), so equal values there have one storage class. A
    column without affinity (``BLOB``, no type, a STRICT table's ``ANY``) keeps ``1`` and
    ``1.0`` apart, and two columns of different affinities convert when compared."""
    if left is None or right is None:
        return True
    a, b = affinity(left.type), affinity(right.type)
    return a != b or a == "BLOB" or "ANY" in (left.type.upper(), right.type.upper())


@dataclass
class KeyInfo:
    """How a table's primary key behaves: the rowid itself, or an index with collations."""

    rowid: bool                                   # INTEGER PRIMARY KEY: the rowid, never NULL
    collations: dict[str, str] = field(default_factory=dict)   # lower key column -> collation
    desc: bool = False                            # a key column sorts descending

    def nullable(self, table: Table) -> bool:
        """SQLite lets a key hold NULL outside WITHOUT ROWID tables, the rowid, and NOT NULL."""
        if self.rowid or table.without_rowid:
            return False
        return any(c is None or not c.notnull for c in (table.column(p) for p in table.pk))


def key_info(conn: sqlite3.Connection, schema: str, table: Table) -> KeyInfo:
    """The key's index as SQLite made it (``INTEGER PRIMARY KEY DESC`` is not the rowid)."""
    for _seq, name, _unique, origin, *_ in conn.execute(f"PRAGMA {schema}.index_list({q(table.name)})"):
        if origin == "pk":
            cols = conn.execute(f"PRAGMA {schema}.index_xinfo({q(name)})").fetchall()
            return KeyInfo(False, {c[2].lower(): str(c[4]).upper() for c in cols if c[5] and c[2]},
                           any(c[3] for c in cols if c[5]))
    return KeyInfo(rowid=not table.without_rowid)


class TableDiff:
    """Row changes of one table present on both sides."""

    def __init__(self, conn: sqlite3.Connection, o: Options, lt: Table, rt: Table,
                 ranges: list[tuple[int, int]] | None, group: GroupSummary,
                 keys: tuple[pages.KeySet, pages.KeySet] | None = None) -> None:
        self.conn, self.o, self.lt, self.rt, self.g = conn, o, lt, rt, group
        self.ranges = ranges if ranges and lt.rowid and rt.rowid else None
        self.only_keys = keys
        scrub = o.scrubbed.get(lt.name.lower(), set())
        self.scrub_cols = [c.name for c in lt.columns if c.name.lower() in scrub and rt.column(c.name)]
        hidden = set() if o.include_scrubbed else {c.lower() for c in self.scrub_cols}
        self.common = [c.name for c in lt.columns if rt.column(c.name) is not None]
        self.left_cols = [c.name for c in lt.columns if c.name.lower() not in hidden]
        self.right_cols = [c.name for c in rt.columns if c.name.lower() not in hidden]
        pk_l, pk_r = [p.lower() for p in lt.pk], [p.lower() for p in rt.pk]
        self.pk = lt.pk if pk_l and pk_l == pk_r else []
        pks = {p.lower() for p in self.pk}
        self.compare = [c for c in self.common if c.lower() not in pks and c.lower() not in hidden]
        self.keys = (key_info(conn, "main", lt), key_info(conn, "r", rt)) if self.pk else None
        self.nullable = self.keys is not None and (self.keys[0].nullable(lt) or self.keys[1].nullable(rt))

    # helpers -------------------------------------------------------------------
    def _source(self, schema: str, table: Table, alias: str) -> str:
        """The table of a side as a ``FROM`` item, kept to the rows the pages say can
        differ: those in the rowid ranges, or (a WITHOUT ROWID table) those on its own
        changed pages, a leaf by its key span, a row of an interior page by its key."""
        name = f"{schema}.{q(table.name)}"
        if self.ranges:
            return f"{name} AS {alias} JOIN {_RANGES} AS g ON {alias}.{q(table.rowid or 'rowid')} BETWEEN g.lo AND g.hi"
        if self.only_keys:
            side = "a" if schema == "main" else "b"
            cols = [f"x.{q(p)}" for p in table.pk]
            lo = ", ".join(f"s.l{i}" for i in range(len(cols)))
            hi = ", ".join(f"s.h{i}" for i in range(len(cols)))
            on = " AND ".join(f"{c} = g.k{i}" for i, c in enumerate(cols))
            return (f"(SELECT x.* FROM {_KEYS}_{side}_spans AS s JOIN {name} AS x ON ({', '.join(cols)}) BETWEEN "
                    f"({lo}) AND ({hi}) UNION ALL SELECT x.* FROM {_KEYS}_{side} AS g JOIN {name} AS x ON {on}) "
                    f"AS {alias}")
        return f"{name} AS {alias}"

    def _load_ranges(self) -> None:
        if self.ranges:
            self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_RANGES.split('.')[1]} (lo INTEGER, hi INTEGER)")
            self.conn.execute(f"DELETE FROM {_RANGES}")
            self.conn.executemany(f"INSERT INTO {_RANGES} VALUES (?, ?)", self.ranges)
        elif self.only_keys:
            n = len(self.pk)
            for side, keys in zip("ab", self.only_keys, strict=True):
                self._key_table(f"{_KEYS}_{side}", [f"k{i}" for i in range(n)], [list(k) for k in keys.points])
                self._key_table(f"{_KEYS}_{side}_spans", [f"l{i}" for i in range(n)] + [f"h{i}" for i in range(n)],
                                [list(lo) + list(hi) for lo, hi in keys.spans])

    def _key_table(self, name: str, cols: list[str], rows: list[list[tuple]]) -> None:
        """A temporary table of keys, each value as stored (TEXT through a CAST: it is held
        in the database's encoding); its columns have no type, so nothing is converted."""
        self.conn.execute(f"DROP TABLE IF EXISTS {name}")
        self.conn.execute(f"CREATE TEMP TABLE {name.split('.')[1]} ({', '.join(cols)})")
        by_shape: dict[tuple[bool, ...], list[list[Any]]] = {}
        for row in rows:
            by_shape.setdefault(tuple(v[0] == "t" for v in row), []).append(
                [bytes(v[1]) if v[0] == "t" else v[1] for v in row])
        for shape, values in by_shape.items():
            marks = ", ".join("CAST(? AS TEXT)" if text else "?" for text in shape)
            self.conn.executemany(f"INSERT INTO {name} VALUES ({marks})", values)

    def _differs(self, c: str) -> str:
        """SQL that is true when column ``c`` differs between rows ``a`` and ``b``: bytes,
        and storage class where the columns can hold equal values of two classes."""
        a, b = f"a.{q(c)}", f"b.{q(c)}"
        if mixed_classes(self.lt.column(c), self.rt.column(c)):
            return f"(+{a} IS NOT +{b} COLLATE BINARY OR typeof({a}) <> typeof({b}))"
        return f"({a} IS NOT {b} COLLATE BINARY)"

    def _match(self) -> str:
        """SQL pairing row ``b`` with row ``a`` on the key, which must be equal exactly.

        ``b.k = a.k`` under the right side's collation and affinity lets SQLite use its key
        index; conditions follow where that equality is looser than exact (a NOCASE key, a
        key column without affinity, or one whose affinity changed)."""
        assert self.keys is not None
        parts = []
        for p in self.pk:
            a, b = f"a.{q(p)}", f"b.{q(p)}"
            lc, rc = self.lt.column(p), self.rt.column(p)
            same_affinity = lc is not None and rc is not None and affinity(lc.type) == affinity(rc.type)
            parts.append(f"{b} = {a}" if same_affinity else f"{b} = +{a}")
            if any(k.collations.get(p.lower(), "BINARY") != "BINARY" for k in self.keys):
                parts.append(f"{b} = {a} COLLATE BINARY")
            if mixed_classes(lc, rc):
                parts.append(f"typeof({b}) = typeof({a})")
        return " AND ".join(parts)

    def _key_null(self, alias: str, null: bool) -> str:
        """SQL that is true when the row's key holds a NULL (``null``), or holds none."""
        if null:
            return "(" + " OR ".join(f"{alias}.{q(p)} IS NULL" for p in self.pk) + ")"
        return " AND ".join(f"{alias}.{q(p)} IS NOT NULL" for p in self.pk)

    def _emit(self, change: Change) -> bool:
        """Count a change; True when it is to be shown (within the limit)."""
        return self.g.count(change.kind, self.o.limit)

    def _intent(self, column: str | None) -> str | None:
        return "scrub" if column and column.lower() in {c.lower() for c in self.scrub_cols} else None

    # the diff ------------------------------------------------------------------
    def changes(self) -> Iterator[Change]:
        g = self.g
        g.status = "compared"
        if self.ranges:
            g.note = f"{len(self.ranges)} rowid range(s) read, from the pages that differ"
        elif self.only_keys:
            n = sum(len(k.spans) + len(k.points) for k in self.only_keys)
            g.note = f"{n} key span(s) read, from the pages that differ"
        self._load_ranges()
        if self.pk:
            yield from self._keyed()
            if self.nullable:   # rows a NULL in their key leaves without identity
                yield from self._multiset(self._key_null("a", True), self._key_null("b", True))
        else:
            yield from self._multiset()
        if not self.o.include_scrubbed:
            yield from self._scrub_entries()

    def _keyed(self) -> Iterator[Change]:
        lt, rt, o = self.lt, self.rt, self.o
        show = o.shower
        exist = f"b.{q(rt.rowid)}" if rt.rowid else f"b.{q(self.pk[0])}"
        flags = [self._differs(c) for c in self.compare]
        select = ([f"a.{q(p)}" for p in self.pk] + [f"{exist} IS NULL"] + [f"a.{q(c)}" for c in self.left_cols]
                  + [f"b.{q(c)}" for c in self.compare] + flags)
        where = " OR ".join([f"{exist} IS NULL"] + flags)
        if self.nullable:
            where = f"{self._key_null('a', False)} AND ({where})"
        sql = (f"SELECT {', '.join(select)} FROM {self._source('main', lt, 'a')} "
               f"LEFT JOIN r.{q(rt.name)} AS b ON {self._match()} WHERE {where}")
        npk, ncols, ncmp = len(self.pk), len(self.left_cols), len(self.compare)
        lpos = {c.lower(): i for i, c in enumerate(self.left_cols)}
        removed = 0
        for row in self.conn.execute(sql):
            keyvals = list(row[:npk])
            if row[npk]:
                removed += 1
                ch = Change("data", "", "removed", store=o.store, table=lt.name)
                if self._emit(ch):
                    vals = row[npk + 1:npk + 1 + ncols]
                    ch.key, ch.path, masked_key = self._key(keyvals)
                    ch.left, ch.masked = show.row(self.left_cols, vals)
                    ch.masked = ch.masked or masked_key
                    yield ch
                continue
            rvals = row[npk + 1 + ncols:npk + 1 + ncols + ncmp]
            for i, c in enumerate(self.compare):
                if not row[npk + 1 + ncols + ncmp + i]:
                    continue
                ch = Change("data", "", "changed", store=o.store, table=lt.name, column=c, intent=self._intent(c))
                if self._emit(ch):
                    ch.key, base, masked_key = self._key(keyvals)
                    ch.path = f"{base}.{c}"
                    ch.left, m1 = show.value(c, row[npk + 1 + lpos[c.lower()]])
                    ch.right, m2 = show.value(c, rvals[i])
                    ch.masked = m1 or m2 or masked_key
                    yield ch
        if not self.nullable and not self.only_keys and self._count("r", rt) == self._count("main", lt) - removed:
            return   # every right row matched a left one: nothing added (the scan below would find none)
        where = f"NOT EXISTS (SELECT 1 FROM main.{q(lt.name)} AS a WHERE {self._match()})"
        if self.nullable:
            where = f"{self._key_null('b', False)} AND {where}"
        sql = (f"SELECT {', '.join(f'b.{q(p)}' for p in self.pk)}, {', '.join(f'b.{q(c)}' for c in self.right_cols)} "
               f"FROM {self._source('r', rt, 'b')} WHERE {where}")
        for row in self.conn.execute(sql):
            ch = Change("data", "", "added", store=o.store, table=lt.name)
            if self._emit(ch):
                ch.key, ch.path, masked_key = self._key(list(row[:npk]))
                ch.right, m = show.row(self.right_cols, row[npk:])
                ch.masked = m or masked_key
                yield ch

    def _count(self, schema: str, t: Table) -> int:
        alias = "a" if schema == "main" else "b"
        sql = f"SELECT count(*) FROM {self._source(schema, t, alias)}"
        return int(self.conn.execute(sql).fetchone()[0])

    def _key(self, values: list[Any]) -> tuple[list[Any], str, bool]:
        shown, masked = [], False
        for p, v in zip(self.pk, values, strict=False):
            s, m = self.o.shower.value(p, v)
            shown.append(s)
            masked = masked or m
        return shown, f"{self.o.store}.{self.lt.name}[{','.join(key_text(v) for v in shown)}]", masked

    def _multiset(self, where_a: str = "", where_b: str = "") -> Iterator[Change]:
        """Rows as multisets (a table without a key, or the rows whose key holds NULL)."""
        lt, rt, o = self.lt, self.rt, self.o
        cols = [c for c in self.common if c.lower() not in {x.lower() for x in self.scrub_cols}
                or o.include_scrubbed]
        if not cols:
            return
        a_cols = ", ".join(f"a.{q(c)}" for c in cols)
        b_cols = ", ".join(f"b.{q(c)}" for c in cols)
        group = ", ".join(f"{q(c)} COLLATE BINARY" + (f", typeof({q(c)})" if mixed_classes(lt.column(c), rt.column(c))
                                                     else "") for c in cols)
        where_a, where_b = (f" WHERE {w}" if w else "" for w in (where_a, where_b))
        sql = (f"SELECT {', '.join(q(c) for c in cols)}, sum(l), sum(r) FROM ("
               f"SELECT {a_cols}, 1 AS l, 0 AS r FROM {self._source('main', lt, 'a')}{where_a} "
               f"UNION ALL SELECT {b_cols}, 0, 1 FROM {self._source('r', rt, 'b')}{where_b}) "
               f"GROUP BY {group} HAVING sum(l) <> sum(r)")
        n = len(cols)
        for row in self.conn.execute(sql):
            left_n, right_n = row[n], row[n + 1]
            kind = "removed" if left_n > right_n else "added"
            ch = Change("data", f"{o.store}.{lt.name}", kind, store=o.store, table=lt.name,
                        count=abs(left_n - right_n))
            if self._emit(ch):
                ch.show_row(*o.shower.row(cols, row[:n]))
                yield ch

    def _scrub_entries(self) -> Iterator[Change]:
        lt, rt, o = self.lt, self.rt, self.o
        for c in self.scrub_cols:
            if self.pk:
                on = self._match()
            elif lt.rowid and rt.rowid:
                on = f"b.{q(rt.rowid)} = a.{q(lt.rowid)}"
            else:
                on = "1"
            sql = (f"SELECT 1 FROM {self._source('main', lt, 'a')} JOIN r.{q(rt.name)} AS b "
                   f"ON {on} WHERE a.{q(c)} IS NOT b.{q(c)} COLLATE BINARY LIMIT 1")
            if self.conn.execute(sql).fetchone():
                ch = Change("data", f"{o.store}.{lt.name}.{c}", "changed", intent="scrub", store=o.store,
                            table=lt.name, column=c)
                if self._emit(ch):
                    yield ch


# --- entry points ----------------------------------------------------------------------

class _Cache:
    """Finished diffs by the two files' tokens (``store_token``): a refresh that finds
    neither file changed costs two stats."""

    def __init__(self, size: int = 32) -> None:
        self.items: OrderedDict[tuple[Any, ...], tuple[list[Change], list[GroupSummary], bool]] = OrderedDict()
        self.size = size

    def get(self, key: tuple[Any, ...]) -> tuple[list[Change], list[GroupSummary], bool] | None:
        hit = self.items.get(key)
        if hit is not None:
            self.items.move_to_end(key)
        return hit

    def put(self, key: tuple[Any, ...], value: tuple[list[Change], list[GroupSummary], bool]) -> None:
        self.items[key] = value
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)


CACHE = _Cache()


def diff_files(left: str, right: str, options: Options, groups: list[GroupSummary] | None = None,
               use_cache: bool = True) -> Iterator[Change]:
    """Stream the changes between two SQLite files; summaries are appended to ``groups``."""
    key = (str(Path(left).absolute()), str(Path(right).absolute()), pages.store_token(left),
           pages.store_token(right), options.include_scrubbed, options.limit,
           tuple(sorted((t, tuple(sorted(c))) for t, c in options.scrubbed.items())), options.shower.key)
    hit = CACHE.get(key) if use_cache else None
    if hit is not None:
        changes, gs, _same = hit
        for g in gs:
            if groups is not None:
                groups.append(GroupSummary(**{**g.__dict__, "status": "cached" if g.status != "same" else "same"}))
        yield from changes
        return
    d = SqliteDiff(left, right, options)
    found: list[Change] = []
    try:
        for ch in d.changes():
            found.append(ch)
            yield ch
    finally:
        if groups is not None:
            groups.extend(d.groups)
    if use_cache and pages.store_token(left) == key[2] and pages.store_token(right) == key[3]:
        CACHE.put(key, (found, d.groups, d.same))


def main(argv: Iterable[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m workbench.diff.sqlite",
                                 description="Diff two SQLite files: schema and rows.")
    ap.add_argument("left")
    ap.add_argument("right")
    ap.add_argument("--json", action="store_true", help="one JSON object per change")
    ap.add_argument("--limit", type=int, default=None, help="at most N changes per table")
    ap.add_argument("--store", default="db", help="the store name used in paths")
    args = ap.parse_args(list(argv) if argv is not None else None)
    groups: list[GroupSummary] = []
    opts = Options(store=args.store, limit=args.limit)
    import sys

    out = sys.stdout
    for ch in diff_files(args.left, args.right, opts, groups, use_cache=False):
        if args.json:
            out.write(json.dumps(ch.as_dict(), ensure_ascii=False) + "\n")
        else:
            from workbench.diff.render import change_line
            out.write(change_line(ch) + "\n")
    for g in groups:
        if g.more:
            out.write(f"# {g.name}: {g.more} more\n")
    return 0


__all__ = ["BlobText", "Options", "SqliteDiff", "diff_files", "read_schema", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
