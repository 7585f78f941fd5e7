"""A scrubbed fork of a SQLite store, byte by byte: no original value of a scrubbed column in
any file of the clone, and prod's pages kept as they are for every table without rules.

prod is a real file with a history, written without ``secure_delete`` (SQLite's own default):
rows updated and deleted, so its pages and its freelist hold stale copies of values that
no row holds any more. Every value that was ever in a scrubbed column counts as original.
"""

from __future__ import annotations

import random
import sqlite3
import string
from pathlib import Path

import pytest

from tests.test_stores_files import reflink_dir  # noqa: F401  (a fixture for the whole run: a loop-mounted XFS)
from tests.test_stores_sqlite import git, leaked
from workbench import fsutil, scrub
from workbench.diff.sqlite import Options, SqliteDiff
from workbench.errors import InvalidInput
from workbench.spec import parse_spec
from workbench.stores import sqlite as sqlite_store
from workbench.stores import sqlitewipe
from workbench.stores.sqlite import SqliteStore

KEY = b"privacy test key, 32 bytes long!"
RULES = {
    "users.email": "email",
    "users.name": "name",
    "users.phone": "phone",
    "users.bio": "hash",           # values longer than a page: overflow chains
    "orders.user_email": "email",  # the same value in many rows, indexed
    "accounts.email": "email",     # the key of a WITHOUT ROWID table
    "accounts.api_key": "hash",
    "logins.token": "hash",        # the PRIMARY KEY of a rowid table
}
UNSCRUBBED = ("products", "settings", "events", "audit")


def words(rnd: random.Random, n: int) -> str:
    return "".join(rnd.choice(string.ascii_lowercase) for _ in range(n))


def mark(rnd: random.Random) -> str:
    """A word with digits: only e-mails have one, so a full-text index of them is the only
    other place it can be found."""
    return "".join(rnd.choice(string.ascii_lowercase + string.digits) for _ in range(5)) + str(rnd.randrange(10))


def build_prod(path: Path, *, wal: bool = False, auto_vacuum: str = "NONE") -> set[str]:
    """prod with a history; returns every value ever written into a scrubbed column."""
    rnd = random.Random(14)
    ever: set[str] = set()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA auto_vacuum={auto_vacuum}")
    conn.execute("PRAGMA secure_delete=OFF")  # freed bytes stay in the file, as upstream SQLite leaves them
    conn.executescript("""
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT, phone TEXT,
                            bio TEXT, notes TEXT,
                            domain TEXT GENERATED ALWAYS AS (substr(email, instr(email, '@') + 1)) STORED);
        CREATE INDEX users_name ON users (name);
        CREATE INDEX users_email_lower ON users (lower(email));
        CREATE INDEX users_uk_phone ON users (phone) WHERE phone LIKE '+44%';
        CREATE TABLE orders (id INTEGER PRIMARY KEY, user_email TEXT NOT NULL, item TEXT, total REAL);
        CREATE INDEX orders_user ON orders (user_email);
        CREATE INDEX orders_item ON orders (item);
        CREATE TABLE accounts (email TEXT PRIMARY KEY, plan TEXT, api_key TEXT) WITHOUT ROWID;
        CREATE TABLE logins (token TEXT PRIMARY KEY, user_id INTEGER, seen TEXT);
        CREATE TABLE products (id INTEGER PRIMARY KEY, title TEXT, description TEXT);
        CREATE INDEX products_title ON products (title);
        CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
        CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT, payload TEXT);
        CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT);
        CREATE VIEW big_spenders AS SELECT user_email, sum(total) FROM orders GROUP BY user_email;
    """)

    def user(i: int) -> tuple:
        email = f"user{i}.{mark(rnd)}@realmail.test"
        name = f"{words(rnd, 5).capitalize()} {words(rnd, 7).capitalize()}"
        phone = f"+{rnd.choice([1, 44, 49])} 20 {rnd.randrange(10**7):07d}"
        bio = f"bio of user {i}: " + words(rnd, 5000) if i % 7 == 0 else f"short bio {i} {words(rnd, 12)}"
        ever.update((email, name, phone, bio))
        return i, email, name, phone, bio, "notes " + words(rnd, 30) * (40 if i % 11 == 0 else 1)

    conn.execute("BEGIN")
    users = [user(i) for i in range(1, 401)]
    conn.executemany("INSERT INTO users (id, email, name, phone, bio, notes) VALUES (?, ?, ?, ?, ?, ?)", users)
    emails = [u[1] for u in users]
    conn.executemany("INSERT INTO orders (user_email, item, total) VALUES (?, ?, ?)",
                     [(rnd.choice(emails), f"item-{rnd.randrange(50)}", rnd.randrange(10000) / 100)
                      for _ in range(4000)])
    for e in rnd.sample(emails, 250):
        key = f"sk_live_{words(rnd, 24)}"
        ever.update((e, key))
        conn.execute("INSERT INTO accounts VALUES (?, ?, ?)", (e, rnd.choice(["free", "pro"]), key))
    for _ in range(600):
        token = f"tok_{words(rnd, 32)}"
        ever.add(token)
        conn.execute("INSERT INTO logins VALUES (?, ?, ?)", (token, rnd.randrange(1, 401), "2024-05-01"))
    conn.executemany("INSERT INTO products (title, description) VALUES (?, ?)",
                     [(f"product {i}", words(rnd, 6000 if i % 9 == 0 else 80)) for i in range(300)])
    conn.executemany("INSERT INTO settings VALUES (?, ?)", [(f"setting.{i}", words(rnd, 20)) for i in range(200)])
    conn.execute("COMMIT")
    # the history: e-mails changed, users and their orders deleted, a table grown afterwards
    conn.execute("BEGIN")
    for uid in rnd.sample(range(1, 401), 60):
        new = f"changed{uid}.{mark(rnd)}@realmail.test"
        ever.add(new)
        old = conn.execute("SELECT email FROM users WHERE id = ?", (uid,)).fetchone()[0]
        conn.execute("UPDATE users SET email = ? WHERE id = ?", (new, uid))
        conn.execute("UPDATE orders SET user_email = ? WHERE user_email = ?", (new, old))
    conn.execute("COMMIT")
    conn.execute("BEGIN")
    gone = rnd.sample(range(1, 401), 80)
    for uid in gone:
        (email,) = conn.execute("SELECT email FROM users WHERE id = ?", (uid,)).fetchone()
        conn.execute("DELETE FROM orders WHERE user_email = ?", (email,))
        conn.execute("DELETE FROM accounts WHERE email = ?", (email,))
        conn.execute("DELETE FROM users WHERE id = ?", (uid,))
    conn.execute("DELETE FROM logins WHERE rowid % 3 = 0")
    conn.execute("COMMIT")
    for _ in range(5):
        conn.executemany("INSERT INTO events (kind, payload) VALUES (?, ?)",
                         [("view", words(rnd, 200)) for _ in range(150)])
    # triggers made after the history (they would have copied e-mails into audit in prod too)
    conn.executescript("""
        CREATE TRIGGER users_audit AFTER UPDATE ON users BEGIN
            INSERT INTO audit (what) VALUES ('was ' || OLD.email || ' ' || OLD.phone); END;
        CREATE TRIGGER accounts_audit BEFORE UPDATE ON accounts BEGIN
            INSERT INTO audit (what) VALUES ('key ' || OLD.api_key); END;
        CREATE TRIGGER orders_audit AFTER INSERT ON orders BEGIN
            INSERT INTO audit (what) VALUES ('order ' || NEW.id); END;
        INSERT INTO audit (what) VALUES ('prod started');
        ANALYZE;
    """)
    # sqlite_stat4 as a build with SQLITE_ENABLE_STAT4 writes it: samples are copies of indexed values
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("CREATE TABLE sqlite_stat4 (tbl, idx, neq, nlt, ndlt, sample)")
    conn.execute("PRAGMA writable_schema = OFF")
    conn.executemany("INSERT INTO sqlite_stat4 VALUES (?, ?, '1', '0', '0', ?)",
                     [("users", "users_name", f"sample {emails[5]}".encode()),
                      ("orders", "orders_user", emails[6].encode()),
                      ("products", "products_title", b"product 12")])
    conn.executescript("""
        CREATE VIRTUAL TABLE users_search USING fts5(email, name, content='users', content_rowid='id');
        INSERT INTO users_search (users_search) VALUES ('rebuild');
        CREATE TRIGGER users_search_ai AFTER INSERT ON users BEGIN
            INSERT INTO users_search (rowid, email, name) VALUES (NEW.id, NEW.email, NEW.name); END;
        CREATE TRIGGER users_search_au AFTER UPDATE ON users BEGIN
            INSERT INTO users_search (users_search, rowid, email, name) VALUES ('delete', OLD.id, OLD.email, OLD.name);
            INSERT INTO users_search (rowid, email, name) VALUES (NEW.id, NEW.email, NEW.name); END;
    """)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    return ever


def rows(db: Path, sql: str, *params) -> list[tuple]:
    """Read a file no process writes, without making -wal or -shm files beside it."""
    conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def originals_in(folder: Path, values: set[str]) -> list[tuple[str, str]]:
    return leaked(folder, values, ("utf-8",))  # the databases here are UTF-8


def make_workspace(root: Path, **prod) -> tuple[SqliteStore, list, Path, set[str]]:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    (root / ".gitignore").write_text("data/\n.repro/\n")
    (root / "data").mkdir()
    path = root / "data" / "shop.db"
    ever = build_prod(path, **prod)
    text = "name: shop\nstores:\n  db: {type: sqlite, path: data/shop.db}\nclone:\n  scrub:\n    db:\n"
    text += "".join(f"      {target}: {strategy}\n" for target, strategy in RULES.items())
    spec = parse_spec(text, root)
    store = SqliteStore(spec, spec.stores["db"], root / ".repro")
    store.scrub_key = KEY
    return store, spec.scrub_rules("db"), path, ever


def stale_in_prod(prod: Path, ever: set[str]) -> set[str]:
    """Originals that no row of prod holds any more but its file still does."""
    live = {v for table_col in RULES for v in _column(prod, table_col)}
    data = prod.read_bytes()
    return {v for v in ever - live if v.encode() in data}


def _column(db: Path, target: str) -> list:
    table, col = target.split(".")
    return [v for (v,) in rows(db, f"SELECT {col} FROM {table} WHERE {col} IS NOT NULL")]


def pages_by_tree(db: Path) -> dict[str, list[tuple[int, bytes]]]:
    """Every page of every b-tree (overflow pages too), with its bytes, from dbstat."""
    conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    try:
        listing = conn.execute("SELECT name, pageno FROM dbstat ORDER BY name, pageno").fetchall()
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    data = db.read_bytes()
    out: dict[str, list[tuple[int, bytes]]] = {}
    for name, pageno in listing:
        out.setdefault(name, []).append((pageno, data[(pageno - 1) * size:pageno * size]))
    return out


def trees_of(db: Path, tables: tuple[str, ...]) -> list[str]:
    """The tables and their indexes (b-trees only)."""
    found = rows(db, f"SELECT name FROM sqlite_schema WHERE rootpage > 0 AND tbl_name IN "
                     f"({', '.join('?' * len(tables))})", *tables)
    return sorted(n for (n,) in found)


# --- privacy ---------------------------------------------------------------------------------

@pytest.mark.parametrize("wal", [False, True], ids=["rollback-journal", "wal"])
def test_no_byte_of_the_clone_holds_an_original_value(tmp_path, wal):
    store, rules, prod, ever = make_workspace(tmp_path, wal=wal)
    stale = stale_in_prod(prod, ever)
    assert len(stale) > 20  # prod's free space does hold old values: the scrub has something to erase
    assert any(len(v) > 4096 for v in ever)  # and values longer than a page
    steps: list[str] = []
    store.fork("b1", None, None, rules, steps.append)
    store.snapshot("b1", "s1")
    store.fork("b2", "b1", "s1", [])
    assert not originals_in(tmp_path / ".repro", ever)
    marks = {v.split(".")[1].split("@")[0] for v in ever if v.endswith("@realmail.test")}
    assert not originals_in(tmp_path / ".repro", marks)  # nor a word of one in the full-text index
    copy = Path(store.location("b1"))
    assert sorted(p.name for p in copy.parent.iterdir()) == ["shop.db"]  # no journal, no WAL
    assert rows(copy, "PRAGMA integrity_check") == [("ok",)]
    assert sqlite_store.is_wal(copy) == wal  # prod's journal mode
    assert sorted(p.name for p in prod.parent.iterdir()) == ["shop.db"]  # nothing made beside prod
    assert any("users" in s for s in steps) and any("users_search" in s for s in steps)


def test_on_a_reflink_filesystem_too(reflink_dir):  # noqa: F811
    """The copy shares prod's blocks until the scrub writes: prod keeps its bytes, the clone
    none of the originals, and its pages of tables without rules are still prod's."""
    root = reflink_dir / "privacy"
    store, rules, prod, ever = make_workspace(root)
    assert fsutil.supports_reflink(root)
    before = prod.read_bytes()
    store.fork("b1", None, None, rules)
    store.snapshot("b1", "s1")
    assert prod.read_bytes() == before
    assert not originals_in(root / ".repro", ever)
    copy = Path(store.location("b1"))
    mine, theirs = pages_by_tree(copy), pages_by_tree(prod)
    assert all(mine[name] == theirs[name] for name in trees_of(prod, UNSCRUBBED))
    assert rows(copy, "PRAGMA integrity_check") == [("ok",)]
    store.destroy("b1")


def test_without_the_wipe_the_same_clone_would_leak(tmp_path, monkeypatch):
    """The check above can fail: SQL alone leaves originals in the copy's unused bytes."""
    store, rules, _prod, ever = make_workspace(tmp_path)
    monkeypatch.setattr(sqlitewipe, "wipe", lambda path, pages: sqlitewipe.Wiped())
    store.fork("b1", None, None, rules)
    assert originals_in(tmp_path / ".repro", ever)


def test_a_sqlite_without_dbstat_rewrites_the_file_instead(tmp_path, monkeypatch):
    store, rules, _prod, ever = make_workspace(tmp_path)

    def no_dbstat(conn, trees, schema="main"):
        raise sqlite3.OperationalError("no such table: dbstat")
    monkeypatch.setattr(sqlitewipe, "pages_of", no_dbstat)
    store.fork("b1", None, None, rules)
    assert not originals_in(tmp_path / ".repro", ever)
    assert rows(Path(store.location("b1")), "PRAGMA integrity_check") == [("ok",)]


def test_scrubbed_rows_hold_the_fakes_and_everything_else_is_prods(tmp_path):
    store, rules, prod, _ever = make_workspace(tmp_path)
    audit_before = rows(prod, "SELECT * FROM audit")
    store.fork("b1", None, None, rules)
    copy = Path(store.location("b1"))
    conn = sqlite3.connect(copy)
    conn.execute("ATTACH DATABASE ? AS prod", (f"file:{prod}?mode=ro&immutable=1",))
    pairs = conn.execute("SELECT p.email, c.email, p.name, c.name, p.phone, c.phone, p.bio, c.bio, c.domain "
                         "FROM prod.users p JOIN main.users c USING (id)").fetchall()
    assert len(pairs) == 320
    for email, fake, name, fake_name, phone, fake_phone, bio, fake_bio, domain in pairs:
        assert fake == scrub.fake_email(email, KEY) and domain == "example.invalid"  # the generated column follows
        assert fake_name == scrub.fake_name(name, KEY) and fake_phone == scrub.fake_phone(phone, KEY)
        assert fake_bio == scrub.fake_hash(bio, KEY)
    # the same value has the same fake in every row and table, so joins hold
    joined = "SELECT count(*) FROM {s}.orders o JOIN {s}.users u ON u.email = o.user_email"
    assert conn.execute(joined.format(s="main")).fetchone() == conn.execute(joined.format(s="prod")).fetchone()
    assert conn.execute("SELECT count(*) FROM main.accounts a JOIN main.users u USING (email)").fetchone()[0] > 100
    # every other column, every rowid and every row of other tables as in prod
    for table, cols in [("users", "id, notes"), ("orders", "rowid, id, item, total"), ("accounts", "plan"),
                        ("logins", "rowid, user_id, seen"), ("products", "rowid, *"), ("settings", "*"),
                        ("events", "rowid, *")]:
        mine = conn.execute(f"SELECT {cols} FROM main.{table} ORDER BY 1").fetchall()
        assert mine == conn.execute(f"SELECT {cols} FROM prod.{table} ORDER BY 1").fetchall(), table
    # no trigger fired while scrubbing, and all are still there
    assert conn.execute("SELECT * FROM main.audit").fetchall() == audit_before
    schema = "SELECT type, name, tbl_name, sql FROM {s}.sqlite_schema WHERE name NOT LIKE 'sqlite_stat%' ORDER BY name"
    assert conn.execute(schema.format(s="main")).fetchall() == conn.execute(schema.format(s="prod")).fetchall()
    # indexes over scrubbed columns answer for the fake values; so does the full-text index
    (fake,) = conn.execute("SELECT email FROM main.users WHERE id = 2").fetchone()
    plan = conn.execute("EXPLAIN QUERY PLAN SELECT id FROM main.users WHERE lower(email) = lower(?)", (fake,))
    assert "users_email_lower" in str(plan.fetchall())
    assert conn.execute("SELECT id FROM main.users WHERE lower(email) = lower(?)", (fake,)).fetchall() == [(2,)]
    first = fake.split(".")[0]
    assert (2,) in conn.execute("SELECT rowid FROM main.users_search WHERE users_search MATCH ?", (first,)).fetchall()
    # the planner's statistics are prod's, but no sample of a scrubbed table
    stat1 = "SELECT * FROM {s}.sqlite_stat1 ORDER BY tbl, idx"
    assert conn.execute(stat1.format(s="main")).fetchall() == conn.execute(stat1.format(s="prod")).fetchall()
    assert conn.execute("SELECT tbl FROM main.sqlite_stat4").fetchall() == [("products",)]
    conn.close()
    # the clone's app writes: its triggers fire as in prod
    app = sqlite3.connect(copy)
    app.execute("UPDATE users SET phone = '+1 555 0100' WHERE id = 2")
    app.commit()
    assert app.execute("SELECT what FROM audit ORDER BY id DESC LIMIT 1").fetchone()[0].startswith(f"was {fake} ")
    assert app.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    app.close()


# --- prod's pages kept ----------------------------------------------------------------------

@pytest.mark.parametrize("auto_vacuum", ["NONE", "FULL"])
def test_tables_without_rules_keep_prods_pages_byte_for_byte(tmp_path, auto_vacuum):
    store, rules, prod, _ever = make_workspace(tmp_path, auto_vacuum=auto_vacuum)
    store.fork("b1", None, None, rules)
    copy = Path(store.location("b1"))
    mine, theirs = pages_by_tree(copy), pages_by_tree(prod)
    kept = trees_of(prod, UNSCRUBBED)
    assert len(kept) == 5  # four tables and an index, overflow pages included
    for name in kept:
        assert mine[name] == theirs[name], name
    for name in ("users", "orders_user", "logins", "accounts"):  # the scrubbed ones are rewritten
        assert mine[name] != theirs[name], name
    assert rows(copy, "PRAGMA auto_vacuum") == rows(prod, "PRAGMA auto_vacuum")
    assert rows(copy, "PRAGMA integrity_check") == [("ok",)]


def test_the_diff_of_a_scrubbed_clone_skips_tables_without_rules_by_their_pages(tmp_path):
    store, rules, prod, _ever = make_workspace(tmp_path)
    store.fork("b1", None, None, rules)
    copy = Path(store.location("b1"))
    app = sqlite3.connect(copy)  # the clone's app changes one product
    app.execute("UPDATE products SET title = 'renamed' WHERE id = 7")
    app.commit()
    app.close()
    diff = SqliteDiff(str(prod), str(copy), Options(store="db"))
    changes = list(diff.changes())
    assert diff.plan is not None and diff.plan.note is None
    ranges = diff.plan.ranges
    for table in ("settings", "events", "audit"):
        assert ranges[table] == [], table  # told equal from the pages: no row read
    assert ranges["products"] and ranges["products"] != [(-(1 << 63), (1 << 63) - 1)]  # a few rows read
    product_changes = [c for c in changes if "products" in c.path]
    assert [c.path for c in product_changes] == ["db.products[7].title"]


# --- constraints ----------------------------------------------------------------------------

def test_a_fake_equal_to_another_rows_original_does_not_break_a_unique_key(tmp_path):
    """Row by row, row 1's fake would meet row 2's original under UNIQUE: the rows are
    rewritten whole instead, and only the final values must be distinct."""
    root = tmp_path / "ws"
    root.mkdir()
    git(root, "init", "-q")
    (root / ".gitignore").write_text("data/\n.repro/\n")
    (root / "data").mkdir()
    prod = root / "data" / "shop.db"
    first = "tok_first"
    second = scrub.fake_hash(first, KEY)  # prod already holds the fake of another row's value
    third = scrub.fake_hash(second, KEY)
    conn = sqlite3.connect(prod)
    conn.executescript("""
        CREATE TABLE tokens (id INTEGER PRIMARY KEY, token TEXT NOT NULL UNIQUE, owner TEXT);
        CREATE TABLE codes (code TEXT PRIMARY KEY, n INTEGER) WITHOUT ROWID;
        CREATE TABLE audit (what TEXT);
        CREATE TRIGGER tokens_gone AFTER DELETE ON tokens BEGIN INSERT INTO audit VALUES (OLD.token); END;
    """)
    conn.executemany("INSERT INTO tokens VALUES (?, ?, ?)", [(1, first, "a"), (2, second, "b"), (5, "other", "c")])
    conn.executemany("INSERT INTO codes VALUES (?, ?)", [(first, 1), (second, 2)])
    conn.commit()
    conn.close()
    spec = parse_spec("name: s\nstores:\n  db: {type: sqlite, path: data/shop.db}\n"
                      "clone:\n  scrub:\n    db: {tokens.token: hash, codes.code: hash}\n", root)
    store = SqliteStore(spec, spec.stores["db"], root / ".repro")
    store.scrub_key = KEY
    store.fork("b1", None, None, spec.scrub_rules("db"))
    copy = Path(store.location("b1"))
    assert rows(copy, "SELECT id, token, owner FROM tokens ORDER BY id") == \
        [(1, second, "a"), (2, third, "b"), (5, scrub.fake_hash("other", KEY), "c")]
    assert rows(copy, "SELECT code, n FROM codes ORDER BY n") == [(second, 1), (third, 2)]
    assert rows(copy, "SELECT count(*) FROM audit") == [(0,)]  # no trigger fired
    assert not originals_in(root / ".repro", {first, "other"})
    assert rows(copy, "PRAGMA integrity_check") == [("ok",)]


def test_a_unique_key_the_fakes_break_is_reported_and_nothing_is_left(tmp_path):
    make_workspace(tmp_path)
    spec = parse_spec("name: s\nstores:\n  db: {type: sqlite, path: data/shop.db}\n"
                      "clone:\n  scrub:\n    db: {logins.token: {constant: same}}\n", tmp_path)
    store = SqliteStore(spec, spec.stores["db"], tmp_path / ".repro")
    with pytest.raises(InvalidInput, match="constraint"):
        store.fork("b1", None, None, spec.scrub_rules("db"))
    assert not store.data_dir("b1").exists()
    assert not [p for p in (tmp_path / ".repro").rglob("*.db*")]


# --- prod is read without leaving anything beside it -------------------------------------------

def test_a_wal_database_no_one_has_open_is_copied_without_a_connection(tmp_path, monkeypatch):
    """No -shm beside prod: opening it (even read-only) would make -wal and -shm files. A WAL
    left by an app that stopped without a checkpoint still counts: its commits are copied."""
    store, rules, prod, _ever = make_workspace(tmp_path, wal=True)
    app = sqlite3.connect(prod)
    app.execute("PRAGMA wal_autocheckpoint=0")
    app.execute("UPDATE products SET title = 'only in the WAL' WHERE id = 3")
    app.commit()
    # the app stops without its checkpoint: the WAL stays, its -shm goes (as after a crash)
    wal_bytes = Path(f"{prod}-wal").read_bytes()
    app.close()
    Path(f"{prod}-wal").write_bytes(wal_bytes)
    assert sorted(p.name for p in prod.parent.iterdir()) == ["shop.db", "shop.db-wal"]
    opened: list[str] = []
    real_connect = sqlite_store._connect

    def connect(path, read_only=False, immutable=False):
        opened.append(str(path))
        return real_connect(path, read_only, immutable)
    monkeypatch.setattr(sqlite_store, "_connect", connect)
    store.fork("b1", None, None, rules)
    assert str(prod) not in opened
    assert sorted(p.name for p in prod.parent.iterdir()) == ["shop.db", "shop.db-wal"]
    copy = Path(store.location("b1"))
    assert rows(copy, "SELECT title FROM products WHERE id = 3") == [("only in the WAL",)]
    assert rows(copy, "PRAGMA integrity_check") == [("ok",)]


def test_a_quiet_prod_that_changes_during_the_copy_is_copied_again(tmp_path, monkeypatch):
    store, _rules, prod, _ever = make_workspace(tmp_path, wal=True)
    real_copy = sqlite_store._copy_with_wal
    calls: list[int] = []

    def copy(src, dest):
        real_copy(src, dest)
        calls.append(1)
        if len(calls) == 1:  # an app commits (and checkpoints) while the first copy runs
            app = sqlite3.connect(src)
            app.execute("UPDATE products SET title = 'written meanwhile' WHERE id = 4")
            app.commit()
            app.close()
    monkeypatch.setattr(sqlite_store, "_copy_with_wal", copy)
    store.fork("b1", None, None, [])
    assert len(calls) == 2
    assert rows(Path(store.location("b1")), "SELECT title FROM products WHERE id = 4") == [("written meanwhile",)]
    assert sorted(p.name for p in prod.parent.iterdir()) == ["shop.db"]
