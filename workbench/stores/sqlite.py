"""SQLite stores: one database file, copied from prod without ever writing it.

prod is only ever opened read-only (``mode=ro``). Its copy into a clone is:

* without scrub rules, SQLite's online backup API: a page copy of one consistent read
  transaction, whatever prod's app is doing;
* with scrub rules, a rebuild into a new file from one read transaction over prod,
  the way ``VACUUM INTO`` rebuilds (tables, then rows, then indexes, then views and
  triggers), with the scrubbed columns transformed in the ``SELECT``: the original values
  are read from prod and never written anywhere, so no journal, WAL, free page or stale
  cell of the copy can hold one. (Scrubbing a copy in place with ``secure_delete`` is not
  enough: a b-tree rebalance leaves stale cells behind, see workbench.scrub.apply_sqlite.)

Copies between a clone's folders (snapshots, ready copies, forks of a clone) take the
source's write lock for an instant and reflink the file and its WAL where the filesystem
can, which is O(1) whatever the size; elsewhere see SqliteStore.copy_dir.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import stat
import urllib.parse
from pathlib import Path
from typing import Any

from workbench import fsutil
from workbench.errors import InvalidInput, Refused
from workbench.scrub import (
    ResolvedRule,
    check_sqlite,
    quote_ident,
    register,
    rules_by_table,
    scrub_select_list,
    table_info,
    workspace_key,
)
from workbench.spec import ScrubRule
from workbench.stores.base import FolderStore, NoSpace, Progress, is_disk_full

MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT = 30.0
COMPANIONS = ("-wal", "-journal", "-shm")
_STAT_WITH_SAMPLES = ("sqlite_stat2", "sqlite_stat3", "sqlite_stat4")
_ENCODINGS = {1: "UTF-8", 2: "UTF-16le", 3: "UTF-16be"}


def file_uri(path: Path, read_only: bool = False) -> str:
    uri = "file:" + urllib.parse.quote(str(path.absolute()))
    return uri + "?mode=ro" if read_only else uri


def read_header(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(100)


def is_wal(path: Path) -> bool:
    """Whether the file is in WAL mode (header bytes 18-19 are 2)."""
    header = read_header(path)
    return len(header) >= 20 and header[18] == 2 and header[19] == 2


def _connect(path: Path, read_only: bool = False) -> sqlite3.Connection:
    return sqlite3.connect(file_uri(path, read_only), uri=True, timeout=BUSY_TIMEOUT, isolation_level=None,
                           check_same_thread=False)


def _frozen(path: Path) -> bool:
    """A snapshot's file (no write bit): nobody writes it, no lock is needed, and opening
    it would be wrong (a WAL database would get -shm/-wal files and a checkpoint)."""
    return not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


class SqliteStore(FolderStore):
    """A SQLite database file; a clone's copy is ``.repro/data/ENV/STORE/<prod's basename>``."""

    def __init__(self, spec, store, repro_dir, fence=None) -> None:
        super().__init__(spec, store, repro_dir, fence)
        self._key: bytes | None = None

    # where things are ----------------------------------------------------------
    def prod_path(self) -> Path:
        return self.spec.store_path(self.store)

    def prod_location(self) -> str:
        return str(self.prod_path())

    def entry(self, folder: Path) -> Path:
        return Path(folder) / self.prod_path().name

    @property
    def scrub_key(self) -> bytes:
        if self._key is None:
            self._key = workspace_key(self.repro_dir)
        return self._key

    @scrub_key.setter
    def scrub_key(self, key: bytes) -> None:
        self._key = key

    # checks ------------------------------------------------------------------
    def _check_prod_file(self) -> Path:
        path = self.prod_path()
        hint_path = f"Check stores.{self.name}.path in repro.yaml (relative to the workspace root, or absolute)."
        if not path.exists():
            raise Refused(f"store '{self.name}': prod's database {path} does not exist.", hint_path)
        if not path.is_file():
            raise Refused(f"store '{self.name}': prod's database {path} is not a file.", hint_path)
        try:
            header = read_header(path)
        except OSError as exc:
            raise Refused(f"store '{self.name}': cannot read prod's database {path}: {exc.strerror}.",
                          "Check the file's permissions.") from None
        if header and not header.startswith(MAGIC):
            raise Refused(f"store '{self.name}': {path} is not a SQLite database.",
                          f"{hint_path} Stores of other kinds: type files or postgres.")
        tracked = fsutil.tracked_by_git(self.spec.root, path)
        if tracked:
            raise Refused(f"store '{self.name}': prod's database {tracked[0]} is tracked by git, so every "
                          "clone's worktree would get it unscrubbed.",
                          f"Untrack it (git rm --cached {tracked[0]}), add it to .gitignore, and commit.")
        return path

    def check(self, rules: list[ScrubRule]) -> None:
        path = self._check_prod_file()
        if not rules:
            return
        try:
            conn = _connect(path, read_only=True)
            try:
                self._resolve(conn, rules, "main")
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            raise self._db_error(exc, path) from None

    def _resolve(self, conn: sqlite3.Connection, rules: list[ScrubRule], schema: str) -> list[ResolvedRule]:
        try:
            return check_sqlite(conn, rules, schema)
        except InvalidInput as exc:
            if f"store '{self.name}'" not in exc.message:
                exc.message = f"store '{self.name}': {exc.message}"
            raise

    def _db_error(self, exc: sqlite3.Error, path: Path) -> Refused:
        text = str(exc)
        if is_disk_full(exc):  # the copy's disk, not prod's file: never say "cannot read" for it
            return NoSpace(f"store '{self.name}': no space left on the disk for its copy ({text}).",
                           "Free some space and try again.")
        if "locked" in text or "busy" in text:
            return Refused(f"store '{self.name}': {path} stayed locked for {BUSY_TIMEOUT:.0f} s ({text}).",
                           "Another process holds a long write transaction on it; try again in a moment.")
        return Refused(f"store '{self.name}': cannot read {path}: {text}.",
                       "Check that the file is a healthy SQLite database: sqlite3 FILE 'PRAGMA quick_check'.")

    # copies ------------------------------------------------------------------
    def copy_from_prod(self, dest_dir: Path, rules: list[ScrubRule], progress: Progress | None = None) -> None:
        src = self._check_prod_file()
        dest = self.entry(dest_dir)
        active = [r for r in rules if r.strategy != "keep"]
        try:
            if active:
                self._scrubbed_copy(src, dest, rules, progress)
            else:
                if rules:  # 'keep' rules only: still checked against the schema
                    self.check(rules)
                if progress:
                    progress(f"copying {self.name} from prod (backup API)")
                self._backup(src, dest, read_only=True)
            fsutil.fsync_file(dest)
        except BaseException:
            for suffix in ("", *COMPANIONS):
                Path(f"{dest}{suffix}").unlink(missing_ok=True)
            raise

    def _backup(self, src: Path, dest: Path, read_only: bool) -> None:
        """SQLite's online backup: one read transaction over ``src``, pages copied as they are
        (the destination keeps the source's journal mode)."""
        try:
            source = _connect(src, read_only=read_only)
            try:
                target = sqlite3.connect(dest)
                try:
                    source.backup(target)
                finally:
                    target.close()
            finally:
                source.close()
        except sqlite3.Error as exc:
            raise self._db_error(exc, src) from None

    def _scrubbed_copy(self, src: Path, dest: Path, rules: list[ScrubRule], progress: Progress | None) -> None:
        if progress:
            progress(f"copying {self.name} from prod, scrubbed")
        encoding = _ENCODINGS.get(int.from_bytes(read_header(src)[56:60], "big"), "UTF-8")
        conn = _connect(dest)
        try:
            conn.execute(f"PRAGMA encoding = '{encoding}'")  # an attached database must match main's
            conn.execute("ATTACH DATABASE ? AS prod", (file_uri(src, read_only=True),))
            # no journal: the copy is new, and discarded on any error. Temporary files (the
            # sorts that build indexes) may go to disk: they only ever hold scrubbed values.
            for pragma in ("main.journal_mode=OFF", "main.synchronous=OFF"):  # (a bigger cache measured slower)
                conn.execute(f"PRAGMA {pragma}")
            conn.execute(f"PRAGMA main.page_size={int(conn.execute('PRAGMA prod.page_size').fetchone()[0])}")
            conn.execute(f"PRAGMA main.auto_vacuum={int(conn.execute('PRAGMA prod.auto_vacuum').fetchone()[0])}")
            register(conn, self.scrub_key)
            conn.execute("BEGIN")  # one read transaction over prod: a consistent copy
            resolved = self._resolve(conn, rules, "prod")
            _rebuild(conn, rules_by_table(resolved), progress)
            conn.execute("COMMIT")
            conn.execute("DETACH DATABASE prod")
            conn.execute(f"PRAGMA main.journal_mode={'WAL' if is_wal(src) else 'DELETE'}")
            conn.execute("SELECT count(*) FROM main.sqlite_schema").fetchone()  # the schema parses
        except sqlite3.IntegrityError as exc:
            raise InvalidInput(f"store '{self.name}': the scrubbed values break a constraint of the "
                               f"database ({exc}).",
                               "A UNIQUE or CHECK constraint rejects the fake values: use 'hash' or 'keep' "
                               "for that column.") from None
        except sqlite3.Error as exc:
            raise self._db_error(exc, src) from None
        finally:
            conn.close()

    def copy_dir(self, src_dir: Path, dest_dir: Path, sync: bool = True) -> None:
        """A consistent copy of a clone's database, even while its app writes:

        * a snapshot's file (read-only, nobody writes it): copied as it is;
        * a live copy: the file and its WAL copied under the source's write lock, cloned
          where the filesystem has reflinks (the lock is held for an instant whatever the
          size), else copied in the kernel: 2-3x faster than the backup API (measured),
          at the price of holding the app's writers (never its readers) while it copies.
        The result is one file (a WAL is folded in) and, with ``sync``, is on disk when this
        returns."""
        src, dest = self.entry(src_dir), self.entry(dest_dir)
        if not src.exists():  # nothing but stray files: copy them as they are
            fsutil.copy_tree(src_dir, dest_dir)
            return
        wal = Path(f"{src}-wal")
        if _frozen(src):
            fsutil.reflink_or_copy(src, dest)
            if wal.exists() and wal.stat().st_size:
                fsutil.reflink_or_copy(wal, Path(f"{dest}-wal"))
        else:
            self._locked_copy(src, dest)
        os.chmod(dest, stat.S_IMODE(os.stat(src).st_mode) | stat.S_IWUSR)
        if Path(f"{dest}-wal").exists():
            _fold_wal(dest)
        if sync:
            fsutil.fsync_file(dest)

    def _locked_copy(self, src: Path, dest: Path) -> None:
        """Copy the file and its WAL under the source's write lock (``BEGIN IMMEDIATE``): no
        commit can land between or during the copies; readers are not held up."""
        copy = fsutil.reflink_or_copy
        try:
            conn = _connect(src)
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    copy(src, dest)
                    wal = Path(f"{src}-wal")
                    if wal.exists() and wal.stat().st_size:
                        copy(wal, Path(f"{dest}-wal"))
                finally:
                    conn.execute("ROLLBACK")
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise self._db_error(exc, src) from None

    # fingerprint -------------------------------------------------------------
    def fingerprint(self, location: str) -> str:
        """Changes with every commit, read without opening the database (a few syscalls):
        inode, size and mtime of the file and its WAL, the file change counter (header
        bytes 24-27, bumped by every commit in rollback mode) and the WAL-index header
        (first 48 bytes of -shm: change counter, last frame and salts, moved by every
        commit in WAL mode). mtime alone is not enough: two same-size commits within one
        clock tick would look alike. ``PRAGMA data_version`` is per connection, so it
        cannot be compared across processes."""
        h = hashlib.blake2b(digest_size=12)
        for suffix in ("", "-wal"):
            try:
                st = os.stat(f"{location}{suffix}")
                h.update(f"{suffix}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns};".encode())
            except OSError:
                h.update(f"{suffix}:-;".encode())
        for suffix, offset, length in (("", 24, 4), ("-shm", 0, 48)):
            try:
                fd = os.open(f"{location}{suffix}", os.O_RDONLY)
                try:
                    h.update(os.pread(fd, length, offset))
                finally:
                    os.close(fd)
            except OSError:
                h.update(b"-")
        return h.hexdigest()


def _fold_wal(db: Path) -> None:
    """Checkpoint a private copy's WAL into the file and remove it, so that a snapshot is
    one self-contained file (its WAL is bounded by the auto-checkpoint: cheap)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        p = Path(f"{db}{suffix}")
        if p.exists() and not p.stat().st_size:
            p.unlink()


def _schema(conn: sqlite3.Connection) -> list[tuple[str, str, str, int | None, str | None]]:
    return conn.execute("SELECT type, name, tbl_name, rootpage, sql FROM prod.sqlite_schema ORDER BY rowid").fetchall()


def _internal(name: str) -> bool:
    return name.lower().startswith("sqlite_")


_FTS = re.compile(r"create\s+virtual\s+table\s+.*?\busing\s+(fts[345])\s*\((.*)\)\s*;?\s*$", re.I | re.S)
_FTS_CONTENT = re.compile(r"(?:^|,)\s*content\s*=\s*(?:'([^']*)'|\"([^\"]*)\"|([^\s,)]+))", re.I)
_FTS_SHADOWS = {"fts5": ("_data", "_idx", "_content", "_docsize", "_config"),
                "fts4": ("_content", "_segments", "_segdir", "_docsize", "_stat"),
                "fts3": ("_content", "_segments", "_segdir", "_docsize", "_stat")}


def _fts_over_scrubbed(schema: list[Any], scrubbed: set[str]) -> dict[str, tuple[str, list[str]]]:
    """Full-text indexes whose external content is a scrubbed table: their shadow tables hold
    the original words. name -> (its CREATE VIRTUAL TABLE, its shadow tables)."""
    out: dict[str, tuple[str, list[str]]] = {}
    for kind, name, _tbl, root, sql in schema:
        found = _FTS.match(sql.strip()) if kind == "table" and not root and sql else None
        if not found:
            continue
        content = _FTS_CONTENT.search(found.group(2))
        table = next((g for g in content.groups() if g is not None), "") if content else ""
        if table.lower() in scrubbed:
            out[name] = (sql, [name + suffix for suffix in _FTS_SHADOWS[found.group(1).lower()]])
    return out


def _has_rowid_alias(conn: sqlite3.Connection, table: str) -> bool:
    info = table_info(conn, table, "prod")
    pks = [c for c in info.columns if c.pk]
    return len(pks) == 1 and pks[0].type.upper() == "INTEGER"


def _without_rowid(conn: sqlite3.Connection, table: str) -> bool:
    try:
        conn.execute(f"SELECT rowid FROM prod.{quote_ident(table)} LIMIT 0")
        return False
    except sqlite3.OperationalError:
        return True


def _rebuild(conn: sqlite3.Connection, scrub: dict[str, dict[str, ResolvedRule]], progress: Progress | None) -> None:
    """Fill the empty main database from the attached ``prod``, scrubbing in flight.

    The order is VACUUM's: tables, their rows, indexes, then the objects without storage
    (views, triggers, virtual tables) as raw schema rows, so no trigger fires while
    copying. Rows of tables that are not scrubbed and whose rowid is their INTEGER
    PRIMARY KEY (or that have none) go through SQLite's transfer optimisation
    (``INSERT INTO t SELECT * FROM prod.t``: records copied without decoding); the others
    name the rowid, so that every rowid is kept and a fresh clone diffs clean."""
    schema = _schema(conn)
    scrubbed = {t.lower(): cols for t, cols in scrub.items()}
    # a full-text index of a scrubbed table is built again from the fake values, at the end:
    # neither it nor its shadow tables are copied
    fts = _fts_over_scrubbed(schema, set(scrubbed))
    left_out = {n.lower() for name, (_sql, shadows) in fts.items() for n in (name, *shadows)}
    tables = [(name, sql) for kind, name, _t, root, sql in schema
              if kind == "table" and root and sql and not _internal(name) and name.lower() not in left_out]
    indexes = [(tbl, sql) for kind, _n, tbl, _root, sql in schema
               if kind == "index" and sql and tbl.lower() not in left_out]
    for _name, sql in tables:
        conn.execute(sql)
    late = []
    for tbl, sql in indexes:
        if tbl.lower() in scrubbed:
            late.append(sql)  # built once from the fake values: faster than updating it row by row
        else:
            conn.execute(sql)
    for name, _sql in tables:
        cols = scrubbed.get(name.lower())
        info = table_info(conn, name, "prod")
        fast = (not cols and not any(c.generated for c in info.columns)
                and (_has_rowid_alias(conn, name) or _without_rowid(conn, name)))
        if progress and cols:
            progress(f"scrubbing {name} ({', '.join(r.column for r in cols.values())})")
        if fast:
            conn.execute(f"INSERT INTO main.{quote_ident(name)} SELECT * FROM prod.{quote_ident(name)}")
        else:
            insert, select, params = scrub_select_list(conn, name, cols or {}, "prod")
            conn.execute(f"INSERT INTO main.{quote_ident(name)} ({', '.join(insert)}) "
                         f"SELECT {', '.join(select)} FROM prod.{quote_ident(name)}", params)
    for sql in late:
        conn.execute(sql)
    _copy_internal_tables(conn, schema, [*scrub, *left_out])
    conn.execute("PRAGMA writable_schema=ON")
    try:
        conn.execute("INSERT INTO main.sqlite_master (type, name, tbl_name, rootpage, sql) "
                     "SELECT type, name, tbl_name, rootpage, sql FROM prod.sqlite_schema "
                     "WHERE (type IN ('view', 'trigger') OR (type = 'table' AND rootpage = 0)) "
                     f"AND lower(name) NOT IN ({', '.join('?' * len(left_out))}) ORDER BY rowid", sorted(left_out))
        version = int(conn.execute("PRAGMA main.schema_version").fetchone()[0])
        conn.execute(f"PRAGMA main.schema_version={version + 1}")
    finally:
        conn.execute("PRAGMA writable_schema=OFF")
    for name, (sql, _shadows) in fts.items():
        if progress:
            progress(f"rebuilding the full-text index {name} from the scrubbed values")
        conn.execute(sql)
        conn.execute(f"INSERT INTO main.{quote_ident(name)} ({quote_ident(name)}) VALUES ('rebuild')")
    for pragma in ("user_version", "application_id"):
        value = int(conn.execute(f"PRAGMA prod.{pragma}").fetchone()[0])
        conn.execute(f"PRAGMA main.{pragma}={value}")


def _copy_internal_tables(conn: sqlite3.Connection, schema: list[Any], scrubbed_tables: list[str]) -> None:
    """sqlite_sequence (AUTOINCREMENT counters) and the planner's statistics. The samples of
    sqlite_stat2/3/4 hold copies of indexed values: those of scrubbed tables are left out."""
    present = {r[0].lower() for r in conn.execute("SELECT name FROM main.sqlite_schema")}
    for kind, name, _tbl, root, sql in schema:
        lname = name.lower()
        if kind != "table" or not root or not sql or not _internal(name):
            continue
        if lname != "sqlite_sequence" and not lname.startswith("sqlite_stat"):
            continue
        if lname not in present:
            conn.execute("PRAGMA writable_schema=ON")
            try:
                conn.execute(sql)
            finally:
                conn.execute("PRAGMA writable_schema=OFF")
        conn.execute(f"DELETE FROM main.{lname}")
        where, params = "", []
        if lname in _STAT_WITH_SAMPLES and scrubbed_tables:
            where = f" WHERE tbl COLLATE NOCASE NOT IN ({', '.join('?' * len(scrubbed_tables))})"
            params = list(scrubbed_tables)
        conn.execute(f"INSERT INTO main.{lname} SELECT * FROM prod.{lname}{where}", params)
