"""Scrubbing: how personal data is masked when prod's data is copied into a clone.

Every strategy is deterministic under a workspace key: the same input gives the same
fake value, in every table and every fork of the workspace, so joins on a scrubbed
column (an e-mail used as a key in two tables) still hold. The fake value is derived
from a keyed HMAC of the original: without the key (kept in ``.repro/scrub.key``, never
committed) nobody can test whether a fake came from a guessed original.

Strategies: ``email``, ``name``, ``phone``, ``null``, ``hash``, ``constant`` (with a
value) and ``keep``. NULL always stays NULL.

For SQLite, :func:`check_sqlite` checks rules against the real schema (before anything is
copied) and :func:`apply_sqlite` scrubs a private copy in place, in SQL, with each fake
computed once per distinct original value; the SQLite store then zeroes the unused space
of the pages it rewrote (``workbench.stores.sqlitewipe``).

Longer than most modules (about 700 lines), on purpose: every strategy's fake values and
the SQLite scrub in place (the maps, indexes, triggers, full-text indexes and statistics
handled around the one UPDATE per table) belong to one privacy promise, read in one place.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import os
import re
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from workbench.errors import InvalidInput
from workbench.spec import ScrubRule

DEFAULT_KEY = b"repro-tui scrub"
KEY_FILE = "scrub.key"
SQL_FUNCTION = "repro_scrub"
FAKE_DOMAIN = "example.invalid"

FIRST_NAMES = (
    "Ada", "Amara", "Anna", "Aiko", "Bruno", "Carla", "Chen", "Dara", "David", "Elena", "Emil", "Fatima",
    "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jonas", "Julia", "Kai", "Karin", "Leila", "Liam",
    "Lucia", "Maya", "Marco", "Mei", "Nadia", "Nils", "Noah", "Olga", "Omar", "Paula", "Priya", "Rafael",
    "Rosa", "Sami", "Sara", "Tariq", "Tomas", "Uma", "Vera", "Viktor", "Wen", "Yara", "Yusuf", "Zoe",
)
LAST_NAMES = (
    "Abbott", "Alvarez", "Berg", "Brennan", "Castro", "Costa", "Dalton", "Duarte", "Eriksen", "Farrow",
    "Fischer", "Garcia", "Hale", "Haddad", "Ito", "Jensen", "Kaur", "Keller", "Kowalski", "Laine",
    "Lopez", "Mbeki", "Moreau", "Nakamura", "Novak", "Okafor", "Olsen", "Park", "Petrov", "Quinn",
    "Rossi", "Sato", "Schmidt", "Silva", "Tanaka", "Torres", "Usman", "Varga", "Vogel", "Walsh",
    "Weber", "Xu", "Yilmaz", "Young", "Zhang", "Ziegler", "Moyo", "Lindqvist",
)

_FIRST_HINTS = ("first", "given", "fore")
_LAST_HINTS = ("last", "sur", "family")


def workspace_key(repro_dir: Path) -> bytes:
    """The workspace's scrub key: 32 random bytes in ``.repro/scrub.key``, made on first use.

    A random key per workspace keeps fakes deterministic within the workspace while making
    them useless for guessing originals elsewhere. Created with O_EXCL so that two
    processes racing to create it agree on one key."""
    path = Path(repro_dir) / KEY_FILE
    try:
        data = path.read_bytes()
        if len(data) >= 16:
            return data
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, os.urandom(32))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process won the race: use its key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()


# --- the strategies ----------------------------------------------------------------

def _message(strategy: str, value: Any) -> bytes:
    """Typed bytes of a value, so that 1, 1.0, '1' and b'1' are different inputs."""
    if isinstance(value, str):
        raw = b"s" + value.encode("utf-8", "surrogatepass")
    elif isinstance(value, bool):
        raw = b"i" + str(int(value)).encode()
    elif isinstance(value, int):
        raw = b"i" + str(value).encode()
    elif isinstance(value, float):
        raw = b"f" + repr(value).encode()
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = b"b" + bytes(value)
    else:
        raw = b"r" + repr(value).encode("utf-8", "surrogatepass")
    return strategy.encode() + b"\0" + raw


def _digest(key: bytes, strategy: str, value: Any, counter: int = 0) -> bytes:
    msg = _message(strategy, value)
    if counter:
        msg += b"\0" + str(counter).encode()
    return hmac.digest(key, msg, hashlib.sha256)


def _pick(names: tuple[str, ...], digest: bytes, offset: int) -> str:
    return names[int.from_bytes(digest[offset:offset + 4], "big") % len(names)]


def fake_email(value: Any, key: bytes = DEFAULT_KEY) -> Any:
    """``firstname.lastname.1a2b3c4d@example.invalid``: looks like an address, delivers nowhere
    (``.invalid`` is reserved), and 8 hex digits keep distinct inputs distinct in practice."""
    if value is None:
        return None
    d = _digest(key, "email", value)
    first, last = _pick(FIRST_NAMES, d, 0).lower(), _pick(LAST_NAMES, d, 4).lower()
    return f"{first}.{last}.{d[8:12].hex()}@{FAKE_DOMAIN}"


def fake_name(value: Any, key: bytes = DEFAULT_KEY, part: str = "auto") -> Any:
    """A name from the built-in lists. ``part`` is ``first``, ``last``, ``full`` or ``auto``
    (one word in, one word out; several words in, "First Last" out)."""
    if value is None:
        return None
    d = _digest(key, "name", value)
    first, last = _pick(FIRST_NAMES, d, 0), _pick(LAST_NAMES, d, 4)
    if part == "first":
        return first
    if part == "last":
        return last
    if part == "auto" and isinstance(value, str) and len(value.split()) == 1:
        return first
    return f"{first} {last}"


def fake_phone(value: Any, key: bytes = DEFAULT_KEY) -> Any:
    """The same shape with other digits: ``+1 (780) 428-9482`` -> ``+7 (203) 915-0467``.
    Integers stay integers with as many digits. Never returns the original itself."""
    if value is None:
        return None
    for counter in range(8):
        d = _digest(key, "phone", value, counter)
        stream = iter(_digits(d))
        if isinstance(value, int) and not isinstance(value, bool):
            n = len(str(abs(value)))
            digits = [next(stream) for _ in range(n)]
            if n > 1 and digits[0] == "0":
                digits[0] = str(1 + int(d[-1]) % 9)
            out: Any = int("".join(digits)) * (-1 if value < 0 else 1)
        else:
            text = value if isinstance(value, str) else str(value)
            out = "".join(next(stream) if c.isascii() and c.isdigit() else c for c in text)
        if out != value or not any(c.isdigit() for c in str(value)):
            return out
    return out


def _digits(digest: bytes) -> Iterable[str]:
    """An endless stream of decimal digits drawn from ``digest`` (re-hashed as needed)."""
    block = digest
    while True:
        for byte in block:
            if byte < 250:  # 250 = 25 * 10: no modulo bias
                yield str(byte % 10)
        block = hashlib.sha256(block).digest()


def fake_hash(value: Any, key: bytes = DEFAULT_KEY) -> Any:
    """A keyed hash of the same kind: 16 hex digits for text, an integer of as many digits
    for an integer, 16 bytes for a blob."""
    if value is None:
        return None
    d = _digest(key, "hash", value)
    if isinstance(value, int) and not isinstance(value, bool):
        n = len(str(abs(value)))
        out = int.from_bytes(d[:8], "big") % (10 ** n)
        if out == value:
            out = (out + 1) % (10 ** n)
        return out * (-1 if value < 0 else 1)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return d[:16]
    return d[:8].hex()


def scrub_value(value: Any, strategy: str, param: Any = None, key: bytes = DEFAULT_KEY) -> Any:
    """Apply one strategy to one value. ``param`` is the constant's value, or the name part."""
    if value is None:
        return None
    if strategy == "email":
        return fake_email(value, key)
    if strategy == "name":
        return fake_name(value, key, param or "auto")
    if strategy == "phone":
        return fake_phone(value, key)
    if strategy == "hash":
        return fake_hash(value, key)
    if strategy == "null":
        return None
    if strategy == "constant":
        return param
    if strategy == "keep":
        return value
    raise ValueError(f"unknown scrub strategy {strategy!r}")


def make_sql_function(key: bytes) -> Callable[[Any, str, Any], Any]:
    """The Python side of ``repro_scrub(value, strategy, param)``, with a cache: the same
    e-mail repeated over a million orders is computed once."""

    @lru_cache(maxsize=1 << 16, typed=True)  # typed: 1, 1.0 and True are different inputs
    def cached(value: Any, strategy: str, param: Any) -> Any:
        return scrub_value(value, strategy, param, key)

    def repro_scrub(value: Any, strategy: str, param: Any) -> Any:
        if value is None:
            return None
        try:
            return cached(value, strategy, param)
        except TypeError:  # unhashable (never for SQLite values, but be safe)
            return scrub_value(value, strategy, param, key)

    return repro_scrub


def register(conn: sqlite3.Connection, key: bytes) -> None:
    conn.create_function(SQL_FUNCTION, 3, make_sql_function(key), deterministic=True)


# --- SQLite: rules against a real schema ---------------------------------------------

def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _fold(name: str) -> str:
    """SQLite compares identifiers case-insensitively for ASCII letters only."""
    return name.encode("utf-8", "surrogatepass").lower().decode("utf-8", "surrogatepass")


@dataclass
class Column:
    name: str
    type: str
    notnull: bool
    pk: int  # position in the primary key, 0 when not part of it
    generated: bool


@dataclass
class TableInfo:
    name: str
    columns: list[Column]

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if _fold(c.name) == _fold(name)), None)


@dataclass
class ResolvedRule:
    """A rule whose table and column are spelled as the database spells them."""

    rule: ScrubRule
    table: str
    column: str

    @property
    def param(self) -> Any:
        if self.rule.strategy == "constant":
            return self.rule.value
        if self.rule.strategy == "name":
            return name_part(self.column)
        return None


def name_part(column: str) -> str:
    """Which part of a name a column holds, from its name: FirstName -> first, surname -> last."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", column).lower()
    if any(h in words for h in _FIRST_HINTS):
        return "first"
    if any(h in words for h in _LAST_HINTS):
        return "last"
    return "auto"


def table_info(conn: sqlite3.Connection, table: str, schema: str = "main") -> TableInfo:
    rows = conn.execute(f"PRAGMA {quote_ident(schema)}.table_xinfo({quote_ident(table)})").fetchall()
    # cid, name, type, notnull, dflt_value, pk, hidden (2, 3: generated)
    return TableInfo(table, [Column(r[1], r[2] or "", bool(r[3]), int(r[5]), r[6] in (2, 3)) for r in rows])


def _objects(conn: sqlite3.Connection, schema: str) -> dict[str, tuple[str, str]]:
    rows = conn.execute(f"SELECT type, name FROM {quote_ident(schema)}.sqlite_schema "
                        "WHERE type IN ('table', 'view')").fetchall()
    return {_fold(name): (kind, name) for kind, name in rows}


def _nearest(name: str, candidates: list[str]) -> str:
    folded = {_fold(c): c for c in candidates}
    close = difflib.get_close_matches(_fold(name), list(folded), n=1, cutoff=0.5)
    listed = ", ".join(sorted(candidates)[:12]) + (", ..." if len(candidates) > 12 else "")
    if close:
        return f"Did you mean '{folded[close[0]]}'? It has: {listed}."
    return f"It has: {listed}." if candidates else "It has none."


def check_sqlite(conn: sqlite3.Connection, rules: list[ScrubRule], schema: str = "main") -> list[ResolvedRule]:
    """Check every rule against the real schema and return them resolved to the real names.

    Raises InvalidInput naming the rule, the store and the nearest existing table or column."""
    objects = _objects(conn, schema)
    tables = [name for kind, name in objects.values() if kind == "table" and not _fold(name).startswith("sqlite_")]
    resolved: list[ResolvedRule] = []
    seen: dict[tuple[str, str], ScrubRule] = {}
    for rule in rules:
        label = f"scrub rule '{rule.target}: {rule.strategy}' of the store '{rule.store}'"
        table = rule.table
        if "." in table:
            prefix, table = table.split(".", 1)
            if _fold(prefix) != "main":
                raise InvalidInput(f"{label}: a SQLite file has one schema, 'main', not '{prefix}'.",
                                   f"Write the rule as {table}.{rule.column}.")
        found = objects.get(_fold(table))
        if found is None or _fold(table).startswith("sqlite_"):
            raise InvalidInput(f"{label}: the database has no table '{table}'.", _nearest(table, tables))
        kind, real_table = found
        if kind == "view":
            raise InvalidInput(f"{label}: '{real_table}' is a view; scrub the tables it reads from.",
                               f"Tables: {', '.join(sorted(tables)[:12])}.")
        info = table_info(conn, real_table, schema)
        col = info.column(rule.column)
        if col is None:
            raise InvalidInput(f"{label}: the table '{real_table}' has no column '{rule.column}'.",
                               _nearest(rule.column, [c.name for c in info.columns]))
        if col.generated:
            raise InvalidInput(f"{label}: '{real_table}.{col.name}' is a generated column: it is computed "
                               "from other columns.", "Scrub the columns it is computed from instead.")
        if rule.strategy == "null" and col.notnull:
            raise InvalidInput(f"{label}: '{real_table}.{col.name}' is NOT NULL, so it cannot be scrubbed to NULL.",
                               "Use 'hash', or {constant: VALUE}, for this column.")
        if rule.strategy == "constant" and rule.value is None and col.notnull:
            raise InvalidInput(f"{label}: '{real_table}.{col.name}' is NOT NULL and the constant is empty.",
                               "Give the constant a value, e.g. {constant: 'n/a'}.")
        ident = (_fold(real_table), _fold(col.name))
        if ident in seen:
            raise InvalidInput(f"{label}: the column '{real_table}.{col.name}' already has the rule "
                               f"'{seen[ident].target}: {seen[ident].strategy}'.", "Keep one rule per column.")
        seen[ident] = rule
        resolved.append(ResolvedRule(rule, real_table, col.name))
    return resolved


def rules_by_table(resolved: list[ResolvedRule]) -> dict[str, dict[str, ResolvedRule]]:
    """table -> folded column name -> rule (``keep`` rules are left out: nothing to do)."""
    out: dict[str, dict[str, ResolvedRule]] = {}
    for r in resolved:
        if r.rule.strategy != "keep":
            out.setdefault(r.table, {})[_fold(r.column)] = r
    return out


# --- SQLite: scrubbing a private copy in place ----------------------------------------

_MAP = "repro_fake"        # temp.repro_fake_N: originals and their fakes, one table per (strategy, parameter)
_STAGE = "repro_stage"     # temp.repro_stage: the rows of a table rewritten whole (see _rewrite_rows)
_FTS = re.compile(r"create\s+virtual\s+table\s+.*?\busing\s+(fts[345])\s*\((.*)\)\s*;?\s*$", re.I | re.S)
_FTS_CONTENT = re.compile(r"(?:^|,)\s*content\s*=\s*(?:'([^']*)'|\"([^\"]*)\"|([^\s,)]+))", re.I)
_FTS_SHADOWS = {"fts5": ("_data", "_idx", "_content", "_docsize", "_config"),
                "fts4": ("_content", "_segments", "_segdir", "_docsize", "_stat"),
                "fts3": ("_content", "_segments", "_segdir", "_docsize", "_stat")}


@dataclass
class _Index:
    name: str
    sql: str | None         # None: not to be dropped (made by a UNIQUE or PRIMARY KEY constraint,
                            # or in a database with auto_vacuum)
    unique: bool
    columns: set[str]       # folded names of the table's columns it holds


@dataclass
class _Plan:
    """How one table is scrubbed: which of its indexes are dropped and made again from the
    fake values, which SQLite keeps up to date row by row, and whether rows are rewritten
    whole (see :func:`_rewrite_rows`) instead of updated."""

    table: str
    rules: dict[str, ResolvedRule]
    info: TableInfo
    without_rowid: bool
    alias: Column | None    # the INTEGER PRIMARY KEY that names the rowid
    rebuilt: list[_Index]
    kept_up: list[_Index]
    rewrite: bool = False
    stat1: list[tuple[Any, ...]] | None = None


def apply_sqlite(conn: sqlite3.Connection, rules: list[ScrubRule], key: bytes = DEFAULT_KEY,
                 progress: Callable[[str], None] | None = None) -> set[str]:
    """Scrub a private copy of a database in place, in SQL. Returns the names of the b-trees
    (tables, indexes, full-text shadow tables, statistics) whose pages it rewrote.

    For each strategy, the distinct original values of the columns it applies to are put in
    a temporary table beside their fakes, each fake computed once (``SELECT DISTINCT``, then
    the scrub function); one ``UPDATE OR ABORT`` per table then sets only the scrubbed
    columns from that table. Tables without rules, and their indexes, are never written:
    their pages stay byte for byte what they were.

    * ``secure_delete`` is on, so every cell and page SQLite frees is zeroed; the journal is
      off (a journal would hold the original pages) and temporary tables live in memory
      (the maps take some 100 bytes per distinct value), so no original value is written
      anywhere else. Without a journal an error leaves the copy half scrubbed: discard it.
    * Triggers of the scrubbed tables are dropped for the duration and put back as they
      were (an audit trigger would copy the originals into another table); foreign keys are
      not enforced, as in a copy made row by row.
    * An index over a scrubbed column is dropped and made again from the fake values (far
      faster than updating it row by row, and its statistics are kept); one made by a
      UNIQUE or PRIMARY KEY constraint cannot be dropped and is kept up to date, as is every
      index of a database with auto_vacuum (where dropping or creating a b-tree moves the
      root pages of others). When a fake of a unique column equals another row's original,
      updating rows one by one could hit a uniqueness error that the final rows do not
      have: that table's rows are rewritten whole instead.
    * A full-text index (FTS3/4/5) whose content is a scrubbed table is emptied and built
      again from the fake values ('rebuild'); samples of the scrubbed tables in
      ``sqlite_stat2/3/4`` are deleted.

    What SQL cannot do is left to the caller: when a page splits or merges, SQLite does not
    zero the bytes between its cell pointers and its cells, so stale copies of cells
    (originals among them) can remain in the unused space of the rewritten b-trees' pages,
    and a copy of prod also keeps prod's own free pages. Close the connection and zero them
    (``workbench.stores.sqlitewipe``) before the copy counts as scrubbed."""
    resolved = check_sqlite(conn, rules)
    by_table = rules_by_table(resolved)
    if not by_table:
        return set()
    if conn.in_transaction:
        raise RuntimeError("apply_sqlite runs its own transaction: commit first")
    mode = conn.execute("PRAGMA main.journal_mode").fetchone()[0].lower()
    if mode != "off" and conn.execute("PRAGMA main.journal_mode=OFF").fetchone()[0].lower() != "off":
        raise RuntimeError(f"cannot scrub in place with journal_mode={mode}")
    for pragma in ("main.secure_delete=ON", "temp_store=MEMORY", "foreign_keys=OFF"):
        conn.execute(f"PRAGMA {pragma}")
    register(conn, key)
    conn.execute("BEGIN")
    try:
        touched = _scrub(conn, by_table, progress)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if mode not in ("off", "memory"):
        conn.execute(f"PRAGMA main.journal_mode={mode}")
    return touched


def _scrub(conn: sqlite3.Connection, by_table: dict[str, dict[str, ResolvedRule]],
           progress: Callable[[str], None] | None) -> set[str]:
    schema = conn.execute("SELECT rowid, type, name, tbl_name, rootpage, sql FROM main.sqlite_schema "
                          "ORDER BY rowid").fetchall()
    scrubbed = {_fold(t) for t in by_table}
    triggers = [row for row in schema if row[1] == "trigger" and _fold(row[3]) in scrubbed]
    for row in triggers:  # an audit trigger would copy the originals into another table
        conn.execute(f"DROP TRIGGER main.{quote_ident(row[2])}")
    maps = _fake_maps(conn, by_table)
    # with auto_vacuum, dropping or creating a b-tree moves root pages of other tables
    droppable = conn.execute("PRAGMA main.auto_vacuum").fetchone()[0] == 0
    sql_of = {row[2]: row[5] for row in schema}
    plans = [_plan(conn, table, cols, maps, sql_of, droppable) for table, cols in by_table.items()]
    touched: set[str] = set()
    for plan in plans:
        if progress:
            progress(f"scrubbing {plan.table} ({', '.join(r.column for r in plan.rules.values())})")
        for index in plan.rebuilt:
            plan.stat1 = (plan.stat1 or []) + _stat1_rows(conn, index.name)
            conn.execute(f"DROP INDEX main.{quote_ident(index.name)}")
        if plan.rewrite:
            _rewrite_rows(conn, plan, maps)
        else:
            _update_rows(conn, plan, maps)
        touched.add(plan.table)
        touched.update(i.name for i in plan.kept_up + plan.rebuilt)
    touched.update(drop_samples(conn, "main", list(by_table)))
    _put_back(conn, triggers)
    for plan in plans:
        for index in plan.rebuilt:
            conn.execute(index.sql or "")
        if plan.stat1:
            conn.executemany("INSERT INTO main.sqlite_stat1 VALUES (?, ?, ?)", plan.stat1)
    # a full-text index of a scrubbed table: its shadow tables hold every word of the
    # originals. 'rebuild' empties them (freed pages zeroed) and indexes the fake values.
    for name, shadows in fts_over(schema, scrubbed).items():
        if progress:
            progress(f"rebuilding the full-text index {name} from the scrubbed values")
        conn.execute(f"INSERT INTO main.{quote_ident(name)} ({quote_ident(name)}) VALUES ('rebuild')")
        touched.update(shadows)
    for fakes in maps.values():
        conn.execute(f"DROP TABLE temp.{fakes.table}")
    return touched


def fts_over(schema: list[Any], scrubbed: set[str]) -> dict[str, list[str]]:
    """Full-text indexes whose external content is a scrubbed table (``scrubbed``: folded
    names), from rows ``(rowid, type, name, tbl_name, rootpage, sql)`` of sqlite_schema:
    name -> its shadow tables."""
    out: dict[str, list[str]] = {}
    for _rowid, kind, name, _tbl, root, sql in schema:
        found = _FTS.match(sql.strip()) if kind == "table" and not root and sql else None
        if not found:
            continue
        content = _FTS_CONTENT.search(found.group(2))
        table = next((g for g in content.groups() if g is not None), "") if content else ""
        if _fold(table) in scrubbed:
            out[name] = [name + suffix for suffix in _FTS_SHADOWS[found.group(1).lower()]]
    return out


@dataclass
class _Map:
    table: str    # in the temp schema
    typed: bool   # holds values of more than one type: look up the type too


def _fake_maps(conn: sqlite3.Connection, by_table: dict[str, dict[str, ResolvedRule]]) -> dict[tuple[str, Any], _Map]:
    """One temporary table per (strategy, parameter): each distinct original value of the
    columns it applies to, with its type (1 and 1.0 are different inputs) and its fake.
    Distinct under BINARY collation, so a NOCASE column's 'A@x' and 'a@x' get their own fakes."""
    names: dict[tuple[str, Any], str] = {}
    for table, cols in by_table.items():
        for r in cols.values():
            strategy = r.rule.strategy
            if strategy in ("null", "constant"):
                continue
            name = names.get((strategy, r.param))
            if name is None:
                name = names[(strategy, r.param)] = f"{_MAP}_{len(names) + 1}"
                conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
                conn.execute(f"CREATE TEMP TABLE {name} (repro_orig, repro_type TEXT, repro_fake, "
                             "PRIMARY KEY (repro_orig, repro_type)) WITHOUT ROWID")
            col = quote_ident(r.column)
            conn.execute(f"INSERT INTO temp.{name} SELECT v, t, {SQL_FUNCTION}(v, ?, ?) FROM "
                         f"(SELECT DISTINCT {col} COLLATE BINARY AS v, typeof({col}) AS t "
                         f"FROM main.{quote_ident(table)} WHERE {col} IS NOT NULL) "
                         f"WHERE NOT EXISTS (SELECT 1 FROM temp.{name} WHERE repro_orig = v AND repro_type = t)",
                         (strategy, r.param))  # a value another column had is not faked again
    return {k: _Map(name, conn.execute(f"SELECT count(DISTINCT repro_type) > 1 FROM temp.{name}").fetchone()[0] == 1)
            for k, name in names.items()}


def _fake_expression(r: ResolvedRule, column: str, maps: dict[tuple[str, Any], _Map]) -> tuple[str, list[Any]]:
    """The SQL expression (and its parameters) of the scrubbed value of ``column``. A fake
    is looked up with no affinity and BINARY collation, so only the very same value matches
    (and its type, when the values are of several types)."""
    strategy = r.rule.strategy
    if strategy == "null":
        return "NULL", []
    if strategy == "constant":
        return f"CASE WHEN {column} IS NULL THEN NULL ELSE ? END", [r.param]
    if strategy == "keep":
        return column, []
    fakes = maps[(strategy, r.param)]
    typed = f" AND repro_type = typeof({column})" if fakes.typed else ""
    return f"(SELECT repro_fake FROM temp.{fakes.table} WHERE repro_orig = +{column}{typed})", []


def _plan(conn: sqlite3.Connection, table: str, rules: dict[str, ResolvedRule],
          maps: dict[tuple[str, Any], _Map], sql_of: dict[str, str | None], droppable: bool) -> _Plan:
    info = table_info(conn, table)
    without_rowid = _without_rowid(conn, table)
    scrubbed = set(rules)
    touched_cols = scrubbed | {_fold(c.name) for c in info.columns if c.generated}
    pk = [c for c in info.columns if c.pk]
    alias = pk[0] if not without_rowid and len(pk) == 1 and pk[0].type.upper() == "INTEGER" else None
    # the rowid, or a WITHOUT ROWID table's key, changes: every index holds it
    key_moves = (alias is not None and _fold(alias.name) in scrubbed) or \
        (without_rowid and any(_fold(c.name) in scrubbed for c in pk))
    plan = _Plan(table, rules, info, without_rowid, alias, [], [])
    qt = quote_ident(table)
    for _seq, name, unique, origin, partial in conn.execute(f"PRAGMA main.index_list({qt})").fetchall():
        if without_rowid and origin == "pk":
            continue  # the table's own b-tree
        xinfo = conn.execute(f"PRAGMA main.index_xinfo({quote_ident(name)})").fetchall()
        columns = {_fold(row[2]) for row in xinfo if row[2] is not None}
        expression = any(row[1] == -2 for row in xinfo)
        if not (key_moves or partial or expression or columns & touched_cols):
            continue  # SQLite leaves it alone: its pages stay prod's
        index = _Index(name, sql_of.get(name) if origin == "c" and droppable else None, bool(unique), columns)
        (plan.rebuilt if index.sql else plan.kept_up).append(index)
    # uniqueness is checked row by row as the UPDATE goes: a fake equal to the original of a
    # row not updated yet would fail where the final rows are distinct
    unique_cols = set().union(*(i.columns for i in plan.kept_up if i.unique))
    if alias is not None:
        unique_cols.add(_fold(alias.name))
    if without_rowid:
        unique_cols |= {_fold(c.name) for c in pk}
    for col in unique_cols & scrubbed:
        r = rules[col]
        fakes = maps.get((r.rule.strategy, r.param))
        if fakes and _fake_meets_original(conn, fakes.table):
            plan.rewrite = True
    if plan.rewrite:  # every index is filled again: drop what can be dropped
        plan.rebuilt, plan.kept_up = [], []
        for _seq, name, unique, origin, _partial in conn.execute(f"PRAGMA main.index_list({qt})").fetchall():
            if without_rowid and origin == "pk":
                continue
            index = _Index(name, sql_of.get(name) if origin == "c" and droppable else None, bool(unique), set())
            (plan.rebuilt if index.sql else plan.kept_up).append(index)
    return plan


def _fake_meets_original(conn: sqlite3.Connection, table: str) -> bool:
    """Whether some fake equals another original value (of the same type) in a map."""
    return conn.execute(
        f"SELECT 1 FROM temp.{table} a JOIN temp.{table} b ON b.repro_orig = a.repro_fake "
        "AND b.repro_type = typeof(a.repro_fake) "
        "WHERE a.repro_orig IS NOT b.repro_orig OR a.repro_type IS NOT b.repro_type LIMIT 1").fetchone() is not None


def _update_rows(conn: sqlite3.Connection, plan: _Plan, maps: dict[tuple[str, Any], _Map]) -> None:
    """One UPDATE of the scrubbed columns of the rows that have a value in one of them.
    OR ABORT: a fake that breaks a UNIQUE constraint is an error, never a row replaced."""
    qt = quote_ident(plan.table)
    sets, params, where = [], [], []
    for r in plan.rules.values():
        column = f"{qt}.{quote_ident(r.column)}"
        expr, p = _fake_expression(r, column, maps)
        sets.append(f"{quote_ident(r.column)} = {expr}")
        params.extend(p)
        where.append(f"{column} IS NOT NULL")
    conn.execute(f"UPDATE OR ABORT main.{qt} SET {', '.join(sets)} WHERE {' OR '.join(where)}", params)


def _rewrite_rows(conn: sqlite3.Connection, plan: _Plan, maps: dict[tuple[str, Any], _Map]) -> None:
    """The rows, scrubbed, into a temporary table (in memory); the table emptied; the rows
    inserted back with their rowids. Uniqueness is then checked on the final values only."""
    qt = quote_ident(plan.table)
    insert, select, params = [], [], []
    # the rowid is kept (the INTEGER PRIMARY KEY that names it is a column like the others)
    rowid = None if plan.without_rowid or plan.alias else _rowid_name(plan.info)
    if rowid:
        insert.append(rowid)
        select.append(f"{qt}.{rowid}")
    for c in plan.info.columns:
        if c.generated:
            continue  # computed again by SQLite
        column = f"{qt}.{quote_ident(c.name)}"
        r = plan.rules.get(_fold(c.name))
        expr, p = _fake_expression(r, column, maps) if r else (column, [])
        insert.append(quote_ident(c.name))
        select.append(expr)
        params.extend(p)
    conn.execute(f"DROP TABLE IF EXISTS temp.{_STAGE}")
    conn.execute(f"CREATE TEMP TABLE {_STAGE} AS SELECT {', '.join(select)} FROM main.{qt}", params)
    conn.execute(f"DELETE FROM main.{qt}")
    conn.execute(f"INSERT OR ABORT INTO main.{qt} ({', '.join(insert)}) SELECT * FROM temp.{_STAGE}")
    conn.execute(f"DROP TABLE temp.{_STAGE}")


def _rowid_name(info: TableInfo) -> str | None:
    """A name for the rowid that no column shadows (None when all three are taken)."""
    taken = {_fold(c.name) for c in info.columns}
    return next((n for n in ("rowid", "_rowid_", "oid") if n not in taken), None)


def _without_rowid(conn: sqlite3.Connection, table: str) -> bool:
    try:
        conn.execute(f"SELECT rowid FROM main.{quote_ident(table)} LIMIT 0")
        return False
    except sqlite3.OperationalError:
        return True


def _stat1_rows(conn: sqlite3.Connection, index: str) -> list[tuple[Any, ...]]:
    """The planner's statistics of an index (DROP INDEX deletes them; they are put back)."""
    if not conn.execute("SELECT 1 FROM main.sqlite_schema WHERE name = 'sqlite_stat1'").fetchone():
        return []
    return conn.execute("SELECT tbl, idx, stat FROM main.sqlite_stat1 WHERE idx = ?", (index,)).fetchall()


def _put_back(conn: sqlite3.Connection, rows: list[Any]) -> None:
    """Schema rows (triggers) put back as they were, at their place in sqlite_schema."""
    if not rows:
        return
    conn.execute("PRAGMA writable_schema=ON")
    try:
        conn.executemany("INSERT INTO main.sqlite_master (rowid, type, name, tbl_name, rootpage, sql) "
                         "VALUES (?, ?, ?, ?, ?, ?)", rows)
        version = int(conn.execute("PRAGMA main.schema_version").fetchone()[0])
        conn.execute(f"PRAGMA main.schema_version={version + 1}")
    finally:
        conn.execute("PRAGMA writable_schema=OFF")


def drop_samples(conn: sqlite3.Connection, schema: str, tables: list[str]) -> list[str]:
    """Delete ``sqlite_stat2/3/4`` samples of scrubbed tables: they hold copies of indexed
    values. Returns the statistics tables present."""
    present = [r[0] for r in conn.execute(f"SELECT name FROM {quote_ident(schema)}.sqlite_schema "
                                          "WHERE lower(name) IN ('sqlite_stat2', 'sqlite_stat3', 'sqlite_stat4')")]
    for stat in sorted(present):
        for table in tables:
            conn.execute(f"DELETE FROM {quote_ident(schema)}.{stat} WHERE tbl = ? COLLATE NOCASE", (table,))
    return present
