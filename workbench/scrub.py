"""Scrubbing: how personal data is masked when prod's data is copied into a clone.

Every strategy is deterministic under a workspace key: the same input gives the same
fake value, in every table and every fork of the workspace, so joins on a scrubbed
column (an e-mail used as a key in two tables) still hold. The fake value is derived
from a keyed HMAC of the original: without the key (kept in ``.repro/scrub.key``, never
committed) nobody can test whether a fake came from a guessed original.

Strategies: ``email``, ``name``, ``phone``, ``null``, ``hash``, ``constant`` (with a
value) and ``keep``. NULL always stays NULL.

For SQLite, :func:`check_sqlite` checks rules against the real schema (before anything is
copied) and :func:`scrub_select_list` turns them into the column expressions of an
``INSERT ... SELECT`` so that original values are transformed in flight and never written
(what the SQLite store does). :func:`apply_sqlite` scrubs an existing copy in place.
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


def column_expression(r: ResolvedRule, source: str) -> tuple[str, list[Any]]:
    """The SQL expression (and its parameters) that reads ``source`` scrubbed by rule ``r``."""
    strategy = r.rule.strategy
    if strategy == "null":
        return "NULL", []
    if strategy == "constant":
        return f"CASE WHEN {source} IS NULL THEN NULL ELSE ? END", [r.param]
    if strategy == "keep":
        return source, []
    return f"{SQL_FUNCTION}({source}, ?, ?)", [strategy, r.param]


def apply_sqlite(conn: sqlite3.Connection, rules: list[ScrubRule], key: bytes = DEFAULT_KEY,
                 vacuum: bool = True) -> None:
    """Scrub an existing database in place: ``UPDATE t SET col = repro_scrub(col, ...)``.

    One transaction with ``secure_delete`` on (freed cells and pages are zeroed), the
    rollback journal off (a journal in memory would hold every changed page: the whole
    table) and temporary data in memory, so no original value is written to a journal or
    a temporary file. Without a journal an error leaves the copy half scrubbed: discard
    it. Triggers are dropped for the duration
    (an audit trigger would copy the originals into another table) and put back in the
    same transaction; samples of scrubbed tables in sqlite_stat3/4 are deleted.

    ``secure_delete`` alone does not keep the promise: when SQLite rebalances a b-tree
    page it does not zero the gap between the cell pointers and the cells, and stale
    copies of cells still to be updated survive there (measured: a text column shrunk
    by ``hash`` leaves fragments). Hence the final ``VACUUM`` (``vacuum=True``), which
    writes every page afresh from the scrubbed rows. The stores do not scrub in place:
    they copy with :func:`scrub_select_list`, which never writes an original (and is
    twice as fast)."""
    resolved = check_sqlite(conn, rules)
    by_table = rules_by_table(resolved)
    if not by_table:
        return
    register(conn, key)
    mode = conn.execute("PRAGMA main.journal_mode").fetchone()[0].lower()
    if mode not in ("off", "memory"):
        if conn.execute("PRAGMA main.journal_mode=OFF").fetchone()[0].lower() != "off":
            raise RuntimeError(f"cannot scrub in place with journal_mode={mode}")
    conn.execute("PRAGMA main.secure_delete=ON")
    conn.execute("PRAGMA temp_store=MEMORY")
    if conn.in_transaction:
        raise RuntimeError("apply_sqlite runs its own transaction: commit first")
    conn.execute("BEGIN")
    try:
        triggers = conn.execute("SELECT name, sql FROM main.sqlite_schema WHERE type='trigger' "
                                "AND sql IS NOT NULL").fetchall()
        for name, _sql in triggers:
            conn.execute(f"DROP TRIGGER main.{quote_ident(name)}")
        for table, cols in by_table.items():
            sets, params, where = [], [], []
            for r in cols.values():
                expr, p = column_expression(r, quote_ident(r.column))
                sets.append(f"{quote_ident(r.column)} = {expr}")
                params.extend(p)
                where.append(f"{quote_ident(r.column)} IS NOT NULL")
            conn.execute(f"UPDATE main.{quote_ident(table)} SET {', '.join(sets)} WHERE {' OR '.join(where)}",
                         params)
        drop_samples(conn, "main", list(by_table))
        for _name, sql in triggers:
            conn.execute(sql)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if vacuum:  # its temporary copy holds scrubbed rows only: it may go to disk
        conn.execute("PRAGMA temp_store=DEFAULT")
        conn.execute("VACUUM")
    if mode not in ("off", "memory"):
        conn.execute(f"PRAGMA main.journal_mode={mode}")


def scrub_select_list(conn: sqlite3.Connection, table: str, cols: dict[str, ResolvedRule],
                      schema: str) -> tuple[list[str], list[str], list[Any]]:
    """Columns to INSERT into and expressions to SELECT from ``schema.table`` with the
    table's rules applied: ``(insert_columns, select_expressions, parameters)``.
    Generated columns are left out (SQLite computes them again); the rowid is kept."""
    info = table_info(conn, table, schema)
    names = [c.name for c in info.columns if not c.generated]
    insert, select, params = [], [], []
    rowid = _rowid_name(conn, table, schema, info)
    if rowid:
        insert.append(rowid)
        select.append(rowid)
    for name in names:
        insert.append(quote_ident(name))
        rule = cols.get(_fold(name))
        if rule is None:
            select.append(quote_ident(name))
        else:
            expr, p = column_expression(rule, quote_ident(name))
            select.append(expr)
            params.extend(p)
    return insert, select, params


def _rowid_name(conn: sqlite3.Connection, table: str, schema: str, info: TableInfo) -> str | None:
    """A name for the table's rowid that no column shadows, or None for a WITHOUT ROWID table.
    Kept even when an INTEGER PRIMARY KEY carries it: both then hold the same value."""
    taken = {_fold(c.name) for c in info.columns}
    for name in ("rowid", "_rowid_", "oid"):
        if name in taken:
            continue
        try:
            conn.execute(f"SELECT {name} FROM {quote_ident(schema)}.{quote_ident(table)} LIMIT 0")
        except sqlite3.OperationalError:
            return None
        return name
    return None


def drop_samples(conn: sqlite3.Connection, schema: str, tables: list[str]) -> None:
    """Delete ``sqlite_stat3/4`` samples of scrubbed tables: they hold copies of indexed values."""
    present = {r[0] for r in conn.execute(f"SELECT lower(name) FROM {quote_ident(schema)}.sqlite_schema "
                                          "WHERE name IN ('sqlite_stat3', 'sqlite_stat4')")}
    for stat in sorted(present):
        for table in tables:
            conn.execute(f"DELETE FROM {quote_ident(schema)}.{stat} WHERE tbl = ? COLLATE NOCASE", (table,))
