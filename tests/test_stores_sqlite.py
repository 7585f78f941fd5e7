"""SQLite stores on real files: Chinook copied into tmp_path, real git, real concurrent writers."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.test_stores_files import reflink_dir  # noqa: F401  (a session fixture: a loop-mounted XFS)
from workbench import fsutil, scrub
from workbench.errors import InvalidInput, Refused
from workbench.spec import ScrubRule, parse_spec
from workbench.stores.sqlite import SqliteStore, is_wal

CHINOOK = Path(__file__).parent / "data" / "Chinook_Sqlite.sqlite"
RULES = """\
      Customer.Email: email
      Customer.Phone: phone
      Customer.Fax: null
      Employee.Email: email
      Employee.Phone: phone
"""
SCRUBBED = {"Customer": ["Email", "Phone", "Fax"], "Employee": ["Email", "Phone"]}
FAKE_EMAIL = re.compile(r"^[a-z]+\.[a-z]+\.[0-9a-f]{8}@example\.invalid$")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def workspace(root: Path, wal: bool = False, db: Path = CHINOOK) -> Path:
    """A git repository whose prod data is a copy of Chinook in data/shop.db (ignored by git)."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    (root / ".gitignore").write_text("data/\n.repro/\n")
    (root / "data").mkdir()
    prod = root / "data" / "shop.db"
    prod.write_bytes(db.read_bytes())
    if wal:
        conn = sqlite3.connect(prod)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
    return prod


def make_store(root: Path, rules: str = RULES) -> tuple[SqliteStore, list[ScrubRule]]:
    text = "name: shop\nstores:\n  db: {type: sqlite, path: data/shop.db}\n"
    if rules:
        text += "clone:\n  scrub:\n    db:\n" + rules
    spec = parse_spec(text, root)
    return SqliteStore(spec, spec.stores["db"], root / ".repro"), spec.scrub_rules("db")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def originals(prod: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{prod}?mode=ro", uri=True)
    try:
        return {v for table, cols in SCRUBBED.items() for col in cols
                for (v,) in conn.execute(f"SELECT {col} FROM {table} WHERE {col} IS NOT NULL")}
    finally:
        conn.close()


def leaked(folder: Path, values: set[str], encodings: tuple[str, ...] = ("utf-8", "utf-16-le", "utf-16-be")
           ) -> list[tuple[str, str]]:
    """Every original value found in the bytes of any file under ``folder`` (files with the
    same bytes, such as a snapshot and the copy it was renamed from, are searched once)."""
    found = []
    searched: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            name = str(path.relative_to(folder))
            if digest in searched:
                found += [(name, v) for other, v in found if other == searched[digest]]
                continue
            searched[digest] = name
            for v in values:
                for enc in encodings:
                    if v.encode(enc) in data:
                        found.append((name, v))
    return found


def rows(db: Path, sql: str, *params) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# --- copies from prod -----------------------------------------------------------------------

def test_scrubbed_fork_leaves_no_original_value_in_any_file(tmp_path):
    prod = workspace(tmp_path)
    values = originals(prod)
    assert len(values) > 100
    before = sha256(prod)
    store, rules = make_store(tmp_path)
    store.check(rules)
    steps: list[str] = []
    store.fork("b1", None, None, rules, steps.append)
    copy = Path(store.location("b1"))
    assert copy == tmp_path / ".repro" / "data" / "b1" / "db" / "shop.db"
    assert sorted(p.name for p in copy.parent.iterdir()) == ["shop.db"]  # no journal, no WAL left behind
    assert not leaked(tmp_path / ".repro", values)
    assert sha256(prod) == before
    assert any("Customer" in s for s in steps)
    # the rest is prod's data, exactly: schema, every other column, every rowid
    assert rows(copy, "PRAGMA integrity_check") == [("ok",)]
    schema = "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name"
    assert rows(copy, schema) == rows(prod, schema)
    conn = sqlite3.connect(copy)
    conn.execute("ATTACH DATABASE ? AS prod", (f"file:{prod}?mode=ro",))
    for (table,) in conn.execute("SELECT name FROM prod.sqlite_schema WHERE type = 'table'").fetchall():
        kept = [c for (c,) in conn.execute(f"SELECT name FROM pragma_table_info('{table}')")
                if c not in SCRUBBED.get(table, [])]
        cols = ", ".join(f"[{c}]" for c in kept)
        diff = conn.execute(f"SELECT rowid, {cols} FROM main.[{table}] EXCEPT SELECT rowid, {cols} FROM prod.[{table}]")
        assert diff.fetchall() == [], table
        assert conn.execute(f"SELECT count(*) FROM main.[{table}]").fetchone() == \
            conn.execute(f"SELECT count(*) FROM prod.[{table}]").fetchone()
    emails = conn.execute("SELECT Email FROM main.Customer").fetchall()
    assert all(FAKE_EMAIL.match(e) for (e,) in emails)
    for (fake, real) in conn.execute("SELECT c.Phone, p.Phone FROM main.Customer c JOIN prod.Customer p "
                                     "USING (CustomerId) WHERE p.Phone IS NOT NULL"):
        assert re.sub(r"\d", "9", fake) == re.sub(r"\d", "9", real) and fake != real
    assert conn.execute("SELECT count(*) FROM main.Customer WHERE Fax IS NOT NULL").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM main.Customer WHERE Phone IS NULL").fetchone() == \
        conn.execute("SELECT count(*) FROM prod.Customer WHERE Phone IS NULL").fetchone()  # NULL stays NULL
    conn.close()


@pytest.mark.parametrize("module", ["fts5", "fts4"])
def test_a_full_text_index_of_a_scrubbed_table_is_built_from_the_fake_values(tmp_path, module):
    """An external-content full-text index holds every word of the column it indexes in its
    shadow tables: copied as it is, it would keep the original e-mails in the clone."""
    prod = workspace(tmp_path)
    conn = sqlite3.connect(prod)
    options = "content='Customer', content_rowid='CustomerId'" if module == "fts5" else "content=\"Customer\""
    conn.executescript(f"""
        CREATE VIRTUAL TABLE customer_search USING {module}(Email, {options});
        INSERT INTO customer_search(customer_search) VALUES ('rebuild');
        CREATE TRIGGER customer_search_ai AFTER INSERT ON Customer BEGIN
          INSERT INTO customer_search(rowid, Email) VALUES (new.CustomerId, new.Email); END;
        ANALYZE;""")
    conn.commit()
    words = {w for (e,) in conn.execute("SELECT Email FROM Customer") for w in re.split(r"[@.]", e) if len(w) > 5}
    assert conn.execute("SELECT count(*) FROM customer_search WHERE customer_search MATCH 'luisg'").fetchone() == (1,)
    conn.close()
    store, rules = make_store(tmp_path)
    store.fork("b1", None, None, rules)
    copy = Path(store.location("b1"))
    values = originals(prod)
    assert not leaked(tmp_path / ".repro", values)
    # the words of the original e-mails that no column of the clone holds (its fake e-mails,
    # the customers' names, ...): found in the file, they can only come from an index of the originals
    conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    shown = " ".join(str(v).lower() for (t,) in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'customer_search%' "
        "AND name NOT LIKE 'sqlite_%'") for row in conn.execute(f"SELECT * FROM [{t}]") for v in row)
    conn.close()
    hidden = {w for w in words if w not in shown}
    assert len(hidden) > 20
    assert not leaked(tmp_path / ".repro", hidden), "a word of an original e-mail is in the clone's index"
    # the index answers for the fake values, the trigger is kept, the schema is prod's
    fake = rows(copy, "SELECT Email FROM Customer WHERE CustomerId = 1")[0][0]
    first = fake.split(".")[0]
    hits = rows(copy, f"SELECT rowid FROM customer_search WHERE customer_search MATCH '{first}'")
    assert (1,) in hits
    assert rows(copy, "SELECT name FROM sqlite_schema WHERE type = 'trigger'") == [("customer_search_ai",)]
    schema = "SELECT type, name, tbl_name FROM sqlite_schema ORDER BY name"
    assert rows(copy, schema) == rows(prod, schema)
    assert rows(copy, "PRAGMA integrity_check") == [("ok",)]


def test_scrubbing_is_deterministic_so_joins_hold(tmp_path):
    prod = workspace(tmp_path)
    conn = sqlite3.connect(prod)  # prod's app: an employee who is also a customer
    conn.execute("UPDATE Employee SET Email = (SELECT Email FROM Customer WHERE CustomerId = 7) WHERE EmployeeId = 3")
    conn.commit()
    conn.close()
    store, rules = make_store(tmp_path)
    store.fork("b1", None, None, rules)
    store.fork("b2", None, None, rules)
    q = "SELECT CustomerId, Email, Phone FROM Customer ORDER BY CustomerId"
    one, two = rows(Path(store.location("b1")), q), rows(Path(store.location("b2")), q)
    assert one == two
    assert len({e for _i, e, _p in one}) == len(one)  # distinct stay distinct
    joined = "SELECT count(*) FROM Customer c JOIN Employee e ON e.Email = c.Email"
    assert rows(Path(store.location("b1")), joined) == rows(prod, joined) == [(1,)]
    # the same value gets the same fake in every column that has the strategy, under the workspace key
    real = rows(prod, "SELECT Email FROM Customer WHERE CustomerId = 7")[0][0]
    assert one[6][1] == scrub.fake_email(real, scrub.workspace_key(tmp_path / ".repro"))


@pytest.mark.parametrize("wal", [False, True], ids=["rollback-journal", "wal"])
@pytest.mark.parametrize("with_rules", [False, True], ids=["backup", "scrubbed"])
def test_prod_is_never_written_even_while_its_app_writes(tmp_path, wal, with_rules):
    prod = workspace(tmp_path, wal=wal)
    app = sqlite3.connect(prod, isolation_level=None)
    app.execute("PRAGMA wal_autocheckpoint=0")
    (city,) = app.execute("SELECT City FROM Customer WHERE CustomerId = 2").fetchone()
    app.execute("UPDATE Customer SET Company = 'committed, only in the WAL' WHERE CustomerId = 1")
    app.execute("BEGIN IMMEDIATE")  # an open write transaction, never committed while we copy
    app.execute("UPDATE Customer SET City = 'uncommitted' WHERE CustomerId = 2")
    app.execute("INSERT INTO Genre (Name) SELECT Name || ' again' FROM Genre")
    before = sha256(prod)
    store, rules = make_store(tmp_path, RULES if with_rules else "")
    store.fork("b1", None, None, rules)
    copy = Path(store.location("b1"))
    assert sha256(prod) == before
    assert sorted(p.name for p in copy.parent.iterdir()) == ["shop.db"]
    assert rows(copy, "SELECT Company FROM Customer WHERE CustomerId = 1") == [("committed, only in the WAL",)]
    assert rows(copy, "SELECT City FROM Customer WHERE CustomerId = 2") == [(city,)]
    assert rows(copy, "SELECT count(*) FROM Genre") == [(25,)]
    assert rows(copy, "PRAGMA journal_mode") == [("wal" if wal else "delete",)]  # prod's journal mode
    assert is_wal(copy) == wal
    app.execute("ROLLBACK")
    app.close()


def test_rules_are_checked_before_anything_is_copied(tmp_path):
    workspace(tmp_path)
    for bad, words in [("Custmer.Email: email", ["'Custmer'", "Did you mean 'Customer'?", "store 'db'"]),
                       ("Customer.Emial: email", ["no column 'Emial'", "Did you mean 'Email'?", "Customer.Emial"]),
                       ("Customer.Email: null", ["NOT NULL", "Use 'hash'"])]:
        store, rules = make_store(tmp_path, f"      {bad}\n")
        with pytest.raises(InvalidInput) as err:
            store.check(rules)
        for w in words:
            assert w in str(err.value), str(err.value)
        with pytest.raises(InvalidInput):
            store.fork("b1", None, None, rules)
        assert not store.data_dir("b1").exists()
        leftovers = [p for p in (tmp_path / ".repro" / "data").rglob("*") if p.is_file()]
        assert leftovers == []  # the half-made copy is removed
    store, rules = make_store(tmp_path, "      customer.EMAIL: email\n")  # names match as SQLite matches them
    store.check(rules)


def test_a_constraint_broken_by_the_fake_values_is_reported(tmp_path):
    prod = workspace(tmp_path)
    conn = sqlite3.connect(prod)
    conn.execute("CREATE UNIQUE INDEX genre_name ON Genre (Name)")
    conn.commit()
    conn.close()
    store, rules = make_store(tmp_path, "      Genre.Name: {constant: same}\n")
    with pytest.raises(InvalidInput, match="constraint") as err:
        store.fork("b1", None, None, rules)
    assert "'hash' or 'keep'" in err.value.hint


def test_refusals_say_what_to_do(tmp_path):
    git(tmp_path, "init", "-q")
    store, rules = make_store(tmp_path)
    with pytest.raises(Refused, match="does not exist") as err:
        store.check(rules)
    assert "stores.db.path" in err.value.hint
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "shop.db").write_text("id,email\n1,a@b.c\n")
    with pytest.raises(Refused, match="not a SQLite database"):
        store.check(rules)
    (tmp_path / "data" / "shop.db").write_bytes(CHINOOK.read_bytes())
    store.check(rules)
    git(tmp_path, "add", "data/shop.db")
    with pytest.raises(Refused, match="tracked by git") as err:
        store.fork("b1", None, None, rules)
    assert "git rm --cached data/shop.db" in err.value.hint
    assert not store.data_dir("b1").exists()


def test_schema_corners_survive_the_scrubbed_copy(tmp_path):
    """AUTOINCREMENT, rowids with gaps, WITHOUT ROWID, generated columns, triggers that must not
    fire, views, statistics with samples, FTS, user_version, UTF-16."""
    src = tmp_path / "src.db"
    conn = sqlite3.connect(src, isolation_level=None)
    conn.execute("PRAGMA encoding = 'UTF-16le'")
    conn.executescript("""
        PRAGMA user_version = 42; PRAGMA application_id = 7;
        CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT UNIQUE, name TEXT,
                            domain TEXT GENERATED ALWAYS AS (substr(email, instr(email, '@') + 1)) STORED);
        CREATE TABLE audit (old TEXT);
        CREATE TRIGGER users_audit BEFORE UPDATE ON users BEGIN INSERT INTO audit VALUES (OLD.email); END;
        CREATE TRIGGER users_ins AFTER INSERT ON users BEGIN INSERT INTO audit VALUES ('inserted'); END;
        CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
        CREATE TABLE loose (a TEXT, b TEXT);
        CREATE INDEX loose_a ON loose (a);
        CREATE VIEW v_users AS SELECT id, email FROM users;
        BEGIN;
    """)
    for i in range(1, 301):
        conn.execute("INSERT INTO users (email, name) VALUES (?, ?)", (f"person{i}@corp.example", f"Ünïcode Person{i}"))
        conn.execute("INSERT INTO kv VALUES (?, ?)", (f"key{i}", f"secret-value-{i}"))
        conn.execute("INSERT INTO loose VALUES (?, ?)", (f"a{i}", f"b{i}"))
    conn.executescript("""
        DELETE FROM users WHERE id > 290; DELETE FROM loose WHERE rowid % 7 = 0;
        ANALYZE;
    """)
    # sqlite_stat4 as a build with SQLITE_ENABLE_STAT4 writes it: samples are copies of indexed values
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("CREATE TABLE sqlite_stat4 (tbl, idx, neq, nlt, ndlt, sample)")
    conn.execute("PRAGMA writable_schema = OFF")
    conn.executemany("INSERT INTO sqlite_stat4 VALUES (?, ?, '1', '0', '0', ?)",
                     [("users", "sqlite_autoindex_users_1", b"person7@corp.example"),
                      ("loose", "loose_a", b"a12")])
    fts = True
    try:
        conn.execute("CREATE VIRTUAL TABLE notes USING fts5(body)")
        conn.execute("INSERT INTO notes VALUES ('the quick brown fox')")
    except sqlite3.OperationalError:
        fts = False
    conn.close()
    values = {v for (v,) in rows(src, "SELECT email FROM users")} | {v for (v,) in rows(src, "SELECT v FROM kv")}
    prod = workspace(tmp_path / "ws", db=src)
    store, rules = make_store(tmp_path / "ws", "      users.email: email\n      users.name: name\n      kv.v: hash\n")
    store.fork("b1", None, None, rules)
    copy = Path(store.location("b1"))
    assert not leaked(tmp_path / "ws" / ".repro", values)
    assert rows(copy, "PRAGMA integrity_check") == [("ok",)]
    assert rows(copy, "PRAGMA encoding") == [("UTF-16le",)]
    assert rows(copy, "PRAGMA user_version") == [(42,)] and rows(copy, "PRAGMA application_id") == [(7,)]
    schema = "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_stat%' ORDER BY name"
    assert rows(copy, schema) == rows(prod, schema)
    sequence = "SELECT * FROM sqlite_sequence"
    assert rows(copy, sequence) == rows(prod, sequence) == [("users", 300)]
    assert rows(copy, "SELECT count(*) FROM audit") == rows(prod, "SELECT count(*) FROM audit")  # no trigger fired
    assert rows(copy, "SELECT rowid, a, b FROM loose") == rows(prod, "SELECT rowid, a, b FROM loose")  # rowids kept
    assert rows(copy, "SELECT k FROM kv") == rows(prod, "SELECT k FROM kv")
    assert all(d == "example.invalid" for (d,) in rows(copy, "SELECT domain FROM users"))  # recomputed
    assert rows(copy, "SELECT count(*) FROM v_users") == [(290,)]
    assert rows(copy, "SELECT tbl FROM sqlite_stat1 WHERE tbl = 'loose'")  # statistics kept
    assert rows(copy, "SELECT tbl, sample FROM sqlite_stat4") == [("loose", b"a12")]  # but no scrubbed sample
    names = rows(copy, "SELECT name FROM users ORDER BY id LIMIT 3")
    assert all(len(n.split()) == 2 for (n,) in names)
    if fts:
        assert rows(copy, "SELECT body FROM notes WHERE notes MATCH 'fox'") == [("the quick brown fox",)]
    # the clone's app writes: AUTOINCREMENT continues after prod's counter, and triggers work
    app = sqlite3.connect(copy)
    app.execute("INSERT INTO users (email) VALUES ('new@clone.example')")
    app.commit()
    assert app.execute("SELECT max(id) FROM users").fetchone() == (301,)
    assert app.execute("SELECT count(*) FROM audit WHERE old = 'inserted'").fetchone() == (301,)
    app.close()


# --- copies between a clone's folders ----------------------------------------------------------

WRITER = textwrap.dedent("""
    import os, sqlite3, sys, time
    db, stop = sys.argv[1], sys.argv[2]
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS burst (id INTEGER PRIMARY KEY, n INTEGER, pad TEXT)")
    n = 0
    print("ready", flush=True)
    while not os.path.exists(stop):
        n += 1
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO burst (n, pad) VALUES (?, ?)", [(n, os.urandom(1500).hex())] * 10)
        conn.execute("COMMIT")
        time.sleep(0.002)  # a busy app, not a tight loop: SQLite's locks are not fair queues
    print(n, flush=True)
""")


def snapshots_while_writing(store: SqliteStore, env: str, count: int = 8) -> list[Path]:
    live = Path(store.location(env))
    stop = live.parent.parent / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(live), str(stop)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        snaps = []
        for i in range(count):
            store.snapshot(env, f"s{i}")
            snaps.append(Path(store.snapshot_location(env, f"s{i}")))
            time.sleep(0.02)
    finally:
        stop.write_text("")
        writer.wait(timeout=60)
    assert int(writer.stdout.read().strip()) > 0
    return snaps


def check_snapshots(snaps: list[Path]) -> None:
    counts = []
    for snap in snaps:
        assert sorted(p.name for p in snap.parent.iterdir()) == [snap.name]  # one self-contained file
        assert rows(snap, "PRAGMA integrity_check") == [("ok",)]
        (count,) = rows(snap, "SELECT count(*) FROM burst")[0]
        assert count % 10 == 0  # only whole transactions
        counts.append(count)
    assert counts == sorted(counts) and counts[-1] > 0


@pytest.mark.parametrize("wal", [False, True], ids=["rollback-journal", "wal"])
def test_snapshots_are_consistent_while_the_clone_writes(tmp_path, wal):
    workspace(tmp_path, wal=wal)
    store, rules = make_store(tmp_path)
    store.fork("b1", None, None, rules)
    check_snapshots(snapshots_while_writing(store, "b1"))


@pytest.mark.parametrize("wal", [False, True], ids=["rollback-journal", "wal"])
def test_snapshots_by_reflink_while_the_clone_writes(reflink_dir, wal):  # noqa: F811
    root = reflink_dir / f"sqlite-{'wal' if wal else 'rollback'}"
    workspace(root, wal=wal)
    store, rules = make_store(root)
    store.fork("b1", None, None, rules)
    assert fsutil.supports_reflink(store.data_dir("b1"))
    check_snapshots(snapshots_while_writing(store, "b1"))
    store.destroy("b1")


def snapshot_during_a_spilled_write(store: SqliteStore) -> None:
    """The clone's app writes a transaction too big for its cache: SQLite writes its pages into
    the database file before the commit (rollback journal). A copy taken then, without the lock,
    would hold half a transaction and no journal to undo it."""
    live = Path(store.location("b1"))
    app = sqlite3.connect(live, isolation_level=None)
    app.execute("PRAGMA cache_size = 10")
    app.execute("CREATE TABLE burst (id INTEGER PRIMARY KEY, n INTEGER, pad TEXT)")
    before = sha256(live)
    app.execute("BEGIN")
    app.executemany("INSERT INTO burst (n, pad) VALUES (1, ?)", [(os.urandom(1500).hex(),) for _ in range(500)])
    assert sha256(live) != before  # the uncommitted pages are in the file
    done = threading.Event()
    failure: list[BaseException] = []

    def snapshot() -> None:
        try:
            store.snapshot("b1", "s1")
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failure.append(exc)
        done.set()

    thread = threading.Thread(target=snapshot)
    thread.start()
    assert not done.wait(0.5)  # it waits for the transaction...
    app.execute("COMMIT")
    app.close()
    assert done.wait(30) and not failure  # ...and then copies the committed state
    thread.join()
    snap = Path(store.snapshot_location("b1", "s1"))
    assert rows(snap, "PRAGMA integrity_check") == [("ok",)]
    assert rows(snap, "SELECT count(*) FROM burst") == [(500,)]


def test_a_snapshot_waits_for_a_write_that_reached_the_file(tmp_path):
    workspace(tmp_path)
    store, rules = make_store(tmp_path)
    store.fork("b1", None, None, rules)
    snapshot_during_a_spilled_write(store)


def test_a_reflinked_snapshot_waits_for_a_write_that_reached_the_file(reflink_dir):  # noqa: F811
    root = reflink_dir / "sqlite-spill"
    workspace(root)
    store, rules = make_store(root)
    store.fork("b1", None, None, rules)
    snapshot_during_a_spilled_write(store)
    store.destroy("b1")


def test_snapshot_reset_undo_fork_destroy(tmp_path):
    prod = workspace(tmp_path, wal=True)
    values = originals(prod)
    store, rules = make_store(tmp_path)
    store.fork("b1", None, None, rules)
    live = Path(store.location("b1"))

    def genres() -> int:
        return rows(live, "SELECT count(*) FROM Genre")[0][0]

    def add_genre(name: str) -> None:
        conn = sqlite3.connect(live)
        conn.execute("INSERT INTO Genre (Name) VALUES (?)", (name,))
        conn.commit()
        conn.close()

    add_genre("Skiffle")
    store.snapshot("b1", "s1")
    snap = Path(store.snapshot_location("b1", "s1"))
    assert not snap.stat().st_mode & 0o222
    add_genre("Zydeco")
    assert genres() == 27
    store.make_ready("b1", "s1", "id-1")
    assert store.ready_for("b1") == "id-1"
    ready_inode = store.entry(store.ready_dir("b1")).stat().st_ino
    assert store.reset("b1", "s1", "id-1") is True
    assert live.stat().st_ino == ready_inode  # instant: the ready copy was renamed in
    assert genres() == 26 and is_wal(live)
    add_genre("Polka")  # the reset copy is writable
    store.undo_reset("b1")
    assert genres() == 27
    assert store.reset("b1", "s1", "id-1") is False  # no ready copy: copied from the snapshot, then swapped
    assert genres() == 26
    store.fork("b2", "b1", "s1", rules)  # from a snapshot: as it is, not scrubbed twice
    assert rows(Path(store.location("b2")), "SELECT Email FROM Customer") == rows(live, "SELECT Email FROM Customer")
    store.fork("b3", "b1", None, rules)
    assert rows(Path(store.location("b3")), "SELECT count(*) FROM Genre") == [(26,)]
    assert store.size("b1") > 0 and store.size("b1", "s1") > 0
    assert not leaked(tmp_path / ".repro", values)  # snapshots, ready, undo copies too
    store.destroy("b1")
    assert not store.data_dir("b1").exists() and not store.snapshot_dir("b1", "s1").exists()
    assert rows(Path(store.location("b2")), "SELECT count(*) FROM Genre") == [(26,)]


@pytest.mark.parametrize("wal", [False, True], ids=["rollback-journal", "wal"])
def test_fingerprint_moves_with_every_commit(tmp_path, wal):
    workspace(tmp_path, wal=wal)
    store, rules = make_store(tmp_path)
    store.fork("b1", None, None, rules)
    loc = store.location("b1")
    app = sqlite3.connect(loc, isolation_level=None)
    app.execute("SELECT count(*) FROM Genre").fetchone()  # (the first open of a WAL file makes its -shm)
    seen = {store.fingerprint(loc)}
    app.execute("SELECT count(*) FROM Genre").fetchone()
    assert store.fingerprint(loc) in seen  # reading changes nothing
    for i in range(20):  # same-size commits, faster than the clock ticks
        app.execute("UPDATE Genre SET Name = ? WHERE GenreId = 1", (f"Rock{i % 10}",))
        fp = store.fingerprint(loc)
        assert fp not in seen, i
        seen.add(fp)
    assert store.fingerprint(loc) == fp
    app.close()
    store.snapshot("b1", "s1")
    store.reset("b1", "s1", "x")
    assert store.fingerprint(loc) not in seen
    assert store.fingerprint(loc) == store.fingerprint(loc)
    assert store.prod_location() == str(tmp_path / "data" / "shop.db")


def test_paths_with_spaces_and_uri_characters(tmp_path):
    root = tmp_path / "my shop"
    workspace(root)
    odd = root / "da ta#?é"
    (root / "data" / "shop.db").rename(root / "data" / "x.db")
    odd.mkdir()
    (root / "data" / "x.db").rename(odd / "shop.db")
    spec = parse_spec('name: s\nstores:\n  db: {type: sqlite, path: "da ta#?é/shop.db"}\n'
                      "clone:\n  scrub:\n    db: {Customer.Email: email}\n", root)
    store = SqliteStore(spec, spec.stores["db"], root / ".repro dir")
    store.fork("b1", None, None, spec.scrub_rules("db"))
    store.snapshot("b1", "s1")
    store.fork("b2", "b1", None, [])
    assert FAKE_EMAIL.match(rows(Path(store.location("b2")), "SELECT Email FROM Customer LIMIT 1")[0][0])
