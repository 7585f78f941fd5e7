"""Scrub strategies and the SQLite rule checks, on real SQLite databases."""

from __future__ import annotations

import re
import sqlite3
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import scrub
from workbench.errors import InvalidInput
from workbench.spec import ScrubRule
from workbench.stores.sqlite import scrub_file

KEY = b"test key"
EMAIL_RE = re.compile(r"^[a-z]+\.[a-z]+\.[0-9a-f]{8}@example\.invalid$")


def shape(value: str) -> str:
    return re.sub(r"[0-9]", "9", value)


# --- strategies -------------------------------------------------------------------------

def test_email_is_deterministic_realistic_and_keyed():
    a = scrub.fake_email("luisg@embraer.com.br", KEY)
    assert a == scrub.fake_email("luisg@embraer.com.br", KEY)
    assert EMAIL_RE.match(a), a
    first, last = a.split("@")[0].split(".")[:2]
    assert first.capitalize() in scrub.FIRST_NAMES and last.capitalize() in scrub.LAST_NAMES
    assert scrub.fake_email("luisg@embraer.com.br", b"another key") != a
    assert scrub.fake_email("Luisg@embraer.com.br", KEY) != a  # same input, same output: byte for byte


def test_distinct_emails_stay_distinct():
    fakes = {scrub.fake_email(f"user{i}@example.com", KEY) for i in range(20000)}
    assert len(fakes) == 20000  # a UNIQUE index on the column survives scrubbing


def test_phone_keeps_the_shape_and_changes_the_digits():
    for phone in ("+1 (780) 428-9482", "+55 (12) 3923-5555", "0612345678", "+49 030 2141444", "12"):
        fake = scrub.fake_phone(phone, KEY)
        assert shape(fake) == shape(phone)
        assert fake != phone
        assert fake == scrub.fake_phone(phone, KEY)
    assert scrub.fake_phone("no digits here", KEY) == "no digits here"
    n = scrub.fake_phone(4155550123, KEY)
    assert isinstance(n, int) and len(str(n)) == 10 and n != 4155550123


def test_names_follow_the_input_and_the_column():
    one = scrub.fake_name("Astrid", KEY)
    assert one in scrub.FIRST_NAMES
    full = scrub.fake_name("Astrid Gruber", KEY)
    first, last = full.split(" ")
    assert first in scrub.FIRST_NAMES and last in scrub.LAST_NAMES
    assert scrub.fake_name("Gruber", KEY, "last") in scrub.LAST_NAMES
    assert scrub.fake_name("Astrid Gruber", KEY, "first") in scrub.FIRST_NAMES
    assert scrub.name_part("FirstName") == "first"
    assert scrub.name_part("given_name") == "first"
    assert scrub.name_part("LastName") == "last"
    assert scrub.name_part("surname") == "last"
    assert scrub.name_part("full_name") == "auto"


def test_hash_keeps_the_kind_of_value():
    assert re.fullmatch(r"[0-9a-f]{16}", scrub.fake_hash("secret", KEY))
    h = scrub.fake_hash(123456, KEY)
    assert isinstance(h, int) and 0 <= h < 10**6 and h != 123456
    b = scrub.fake_hash(b"\x00\x01", KEY)
    assert isinstance(b, bytes) and len(b) == 16
    assert scrub.fake_hash(1, KEY) != scrub.fake_hash("1", KEY)


@pytest.mark.parametrize("strategy", ["email", "name", "phone", "null", "hash", "constant", "keep"])
def test_null_stays_null(strategy):
    assert scrub.scrub_value(None, strategy, "x", KEY) is None


def test_constant_keep_and_null():
    assert scrub.scrub_value("a@b.c", "constant", "redacted", KEY) == "redacted"
    assert scrub.scrub_value("a@b.c", "keep", None, KEY) == "a@b.c"
    assert scrub.scrub_value("a@b.c", "null", None, KEY) is None
    with pytest.raises(ValueError):
        scrub.scrub_value("a", "mask", None, KEY)


def test_non_ascii_input():
    for value in ("Zoë Łukasiewicz", "李小龙", "jürgen.müller@bücher.de", "\U0001f600 emoji", "bad \udcff surrogate"):
        assert EMAIL_RE.match(scrub.fake_email(value, KEY))
        assert scrub.fake_name(value, KEY)
        assert scrub.fake_hash(value, KEY) == scrub.fake_hash(value, KEY)
    assert scrub.fake_phone("+٣٣ 12 34", KEY).startswith("+٣٣ ")  # only ASCII digits are replaced


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text(value):
    assert EMAIL_RE.match(scrub.fake_email(value, KEY))
    phone = scrub.fake_phone(value, KEY)
    assert len(phone) == len(value) and shape(phone) == shape(value)
    assert scrub.fake_phone(value, KEY) == phone
    assert scrub.scrub_value(value, "name", None, KEY) == scrub.scrub_value(value, "name", None, KEY)


def test_workspace_key_is_private_stable_and_random(tmp_path):
    key = scrub.workspace_key(tmp_path / ".repro")
    assert len(key) == 32
    assert scrub.workspace_key(tmp_path / ".repro") == key
    path = tmp_path / ".repro" / scrub.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert scrub.workspace_key(tmp_path / "other") != key


# --- SQLite ---------------------------------------------------------------------------------

def make_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("""
        CREATE TABLE Users (id INTEGER PRIMARY KEY, Email TEXT NOT NULL UNIQUE, phone TEXT, note TEXT,
                            domain TEXT GENERATED ALWAYS AS (substr(Email, instr(Email, '@') + 1)) VIRTUAL);
        CREATE TABLE audit (id INTEGER PRIMARY KEY, old_email TEXT);
        CREATE TRIGGER users_audit AFTER UPDATE OF Email ON Users
            BEGIN INSERT INTO audit (old_email) VALUES (OLD.Email); END;
        CREATE VIEW user_emails AS SELECT Email FROM Users;
    """)
    with conn:  # one transaction: one fsync
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO Users (id, Email, phone, note) VALUES (?, ?, ?, ?)",
                         [(i, f"person{i}@corp.example", f"+1 555 {i:04d}" if i % 3 else None, "x" * (i % 50))
                          for i in range(1, 2001)])
    return conn


def rule(target: str, strategy: str, value=None) -> ScrubRule:
    table, column = target.rsplit(".", 1)
    return ScrubRule("db", table, column, strategy, value)


def test_check_matches_names_as_sqlite_does(tmp_path):
    conn = make_db(tmp_path / "a.db")
    resolved = scrub.check_sqlite(conn, [rule("users.EMAIL", "email"), rule("main.USERS.Phone", "phone")])
    assert [(r.table, r.column) for r in resolved] == [("Users", "Email"), ("Users", "phone")]


@pytest.mark.parametrize("target, strategy, words", [
    ("Userz.Email", "email", ["'Userz'", "store 'db'", "Did you mean 'Users'?"]),
    ("Users.Emial", "email", ["no column 'Emial'", "Did you mean 'Email'?", "Users.Emial: email"]),
    ("Users.Email", "null", ["NOT NULL"]),
    ("Users.domain", "hash", ["generated column"]),
    ("user_emails.Email", "email", ["is a view"]),
    ("other.Users.Email", "email", ["one schema, 'main'"]),
    ("sqlite_schema.sql", "hash", ["no table"]),
])
def test_check_errors_name_the_rule_the_store_and_the_nearest_name(tmp_path, target, strategy, words):
    conn = make_db(tmp_path / "a.db")
    with pytest.raises(InvalidInput) as err:
        scrub.check_sqlite(conn, [rule(target, strategy)])
    text = str(err.value)
    for word in words:
        assert word in text, text


def test_check_refuses_two_rules_for_one_column(tmp_path):
    conn = make_db(tmp_path / "a.db")
    with pytest.raises(InvalidInput, match="already has the rule"):
        scrub.check_sqlite(conn, [rule("Users.Email", "email"), rule("users.email", "hash")])


def test_a_copy_scrubbed_in_place_keeps_no_original_and_fires_no_trigger(tmp_path):
    db = tmp_path / "a.db"
    conn = make_db(db)
    originals = [r[0] for r in conn.execute("SELECT Email FROM Users")]
    phones = [r[0] for r in conn.execute("SELECT phone FROM Users WHERE phone IS NOT NULL")]
    conn.close()
    scrub_file(db, [rule("Users.Email", "email"), rule("Users.phone", "phone"), rule("Users.note", "constant", "n/a")],
               KEY)
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT Email, phone, note, domain FROM Users ORDER BY id").fetchall()
    assert all(EMAIL_RE.match(e) and d == "example.invalid" for e, _p, _n, d in rows)
    assert sum(p is None for _e, p, _n, _d in rows) == 2000 - len(phones)  # NULL stays NULL
    assert {n for *_x, n, _d in rows} == {"n/a"}
    assert conn.execute("SELECT count(*) FROM audit").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'users_audit'").fetchone() == (1,)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.db"]  # no journal left
    data = db.read_bytes()
    fakes = {p for _e, p, _n, _d in rows}  # a fake phone may happen to equal another row's original
    leaked = [v for v in originals + phones if v.encode() in data and v not in fakes]
    assert not leaked


def test_fakes_are_computed_once_per_distinct_value(tmp_path, monkeypatch):
    db = tmp_path / "a.db"
    make_db(db).close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executemany("UPDATE Users SET phone = ? WHERE id % 10 = ?", [(f"+1 555 010{n}", n) for n in range(10)])
    conn.close()
    calls: list[object] = []
    real = scrub.make_sql_function

    def counting(key):
        fn = real(key)

        def repro_scrub(value, strategy, param):
            calls.append(value)  # every call from SQL, cached or not
            return fn(value, strategy, param)
        return repro_scrub
    monkeypatch.setattr(scrub, "make_sql_function", counting)
    scrub_file(db, [rule("Users.phone", "phone")], KEY)
    assert sorted(calls) == sorted(f"+1 555 010{n}" for n in range(10))  # 2000 rows, 10 values


def test_the_sql_function_keeps_types_apart_in_its_cache():
    fn = scrub.make_sql_function(KEY)
    as_int, as_float = fn(1, "hash", None), fn(1.0, "hash", None)
    assert isinstance(as_int, int) and isinstance(as_float, str)
    assert fn(None, "email", None) is None
    conn = sqlite3.connect(":memory:")
    scrub.register(conn, KEY)
    got = conn.execute("SELECT repro_scrub('a@b.c', 'email', NULL), repro_scrub(NULL, 'phone', NULL)").fetchone()
    assert got == (scrub.fake_email("a@b.c", KEY), None)


def test_each_value_gets_its_own_fake_whatever_its_type_or_case(tmp_path):
    """Fakes are looked up by value and type under BINARY collation: a NOCASE column's 'A@x'
    and 'a@x', and a typeless column's 1, 1.0, '1' and b'1', are different inputs."""
    db = tmp_path / "a.db"
    conn = sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT COLLATE NOCASE, anything, repro_orig TEXT);
        CREATE INDEX t_email ON t (email);
    """)
    values = [(1, "Ann@Corp.example", 1, "x"), (2, "ann@corp.example", 1.0, "y"), (3, "ANN@corp.example", "1", "z"),
              (4, None, b"1", None), (5, "ann@corp.example", None, "w")]
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", values)
    conn.commit()
    conn.close()
    scrub_file(db, [rule("t.email", "email"), rule("t.anything", "hash"), rule("t.repro_orig", "name")], KEY)
    got = sqlite3.connect(db).execute("SELECT id, email, anything, repro_orig FROM t ORDER BY id").fetchall()
    want = [(i, scrub.fake_email(e, KEY), scrub.fake_hash(a, KEY), scrub.fake_name(n, KEY, "auto"))
            for i, e, a, n in values]
    assert got == want
    assert len({e for _i, e, _a, _n in got if e}) == 3  # three spellings, three fakes; the same one twice
    assert [type(a) for _i, _e, a, _n in got] == [int, str, str, bytes, type(None)]
