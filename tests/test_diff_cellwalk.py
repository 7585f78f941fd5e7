"""The rows of a table compared by their stored bytes (``workbench/diff/_cells.c``), where
prod and the clone share no page: the same answer as a plain comparison, on seeded edits
over values longer than a page, and no crash on a file that is damaged or shrinks while
it is read."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.test_diff_sqlite import execute, run
from tests.test_diff_sqlite_pages import got, naive
from workbench.diff import cellwalk
from workbench.diff import sqlitepages as pages

ROOT = Path(__file__).resolve().parent.parent

needs_library = pytest.mark.skipif(not cellwalk.available() and os.environ.get("CI") != "true",
                                   reason="the diff's C library is not built (no C compiler)")


def test_the_library_is_built_where_a_compiler_is():
    if os.environ.get("CI") == "true" or shutil.which("cc"):
        assert cellwalk.available(), "workbench/diff/_cells.so is missing: `python hatch_build.py` builds it"


def big(rng: random.Random) -> object:
    """A value: small, or longer than a page (it spills to overflow pages), text or blob."""
    pick = rng.random()
    if pick < 0.15:
        return "é" * rng.randint(3000, 12000)
    if pick < 0.25:
        return rng.randbytes(rng.randint(4000, 20000))
    return rng.choice([None, 1, 1.0, "1", b"\x01", "x" * rng.randint(0, 50), -(2 ** 63)])


def lived(path: Path, rng: random.Random, rows: int = 3000) -> None:
    """A store that has lived: appended, grown, shrunk (its pages hold free space)."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, v)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, f"name{i}", big(rng)) for i in range(1, rows + 1)])
    conn.commit()
    conn.execute("UPDATE t SET name = name || ' (edited)' WHERE id % 7 = 3")
    conn.execute("DELETE FROM t WHERE id % 19 = 5")
    conn.commit()
    conn.close()


def vacuumed_copy(src: Path, dest: Path) -> None:
    conn = sqlite3.connect(src)
    conn.execute("VACUUM INTO ?", (str(dest),))
    conn.close()


def edit(path: Path, rng: random.Random, n: int, rows: int = 3000) -> None:
    conn = sqlite3.connect(path)
    for _ in range(n):
        i = rng.randint(1, rows)
        pick = rng.random()
        if pick < 0.4:
            conn.execute("UPDATE t SET v = ? WHERE id = ?", (big(rng), i))
        elif pick < 0.5:   # one byte of a long value, far into its overflow pages
            conn.execute("UPDATE t SET v = substr(v, 1, 8000) || 'Z' || substr(v, 8002) "
                         "WHERE id = ? AND typeof(v) = 'text' AND length(v) > 8001", (i,))
        elif pick < 0.65:
            conn.execute("DELETE FROM t WHERE id = ?", (i,))
        elif pick < 0.8:
            conn.execute("INSERT OR REPLACE INTO t VALUES (?, ?, ?)", (rows + i, "new", big(rng)))
        else:
            conn.execute("UPDATE t SET id = ? WHERE id = ?", (-i, i))     # the same row under another rowid
    conn.commit()
    conn.close()


@needs_library
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("split", [False, True], ids=["one-walk", "two-halves"])
def test_stores_that_share_no_page_are_compared_by_their_cells(tmp_path, seed, split, monkeypatch):
    """Seeded edits of a VACUUMed copy, read in one walk or in two halves on two threads
    (split at every seed's own middle leaf); the answer is the plain comparison's."""
    monkeypatch.setattr(cellwalk, "SPLIT_AT", 2 if split else 10**9)
    rng = random.Random(seed)
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    lived(a, rng)
    vacuumed_copy(a, b)
    if seed % 2:
        edit(b, rng, rng.randint(1, 25))
    expected = naive(a, b, "t", ["id"])
    assert bool(expected) == bool(seed % 2)
    changes, groups = run(a, b)
    assert got(changes, "t") == expected
    g = groups["db.t"]
    assert (g.status == "same") if not expected else "range(s) read" in (g.note or "")
    monkeypatch.setattr(cellwalk, "_lib", lambda: None)                # the same answer without the library
    assert got(run(a, b)[0], "t") == expected


@needs_library
def test_a_byte_deep_in_an_overflow_page_is_found(tmp_path):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    execute(a, "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 39) "
            "INSERT INTO t SELECT i, printf('%.*c', 50000, 'a') FROM n")
    vacuumed_copy(a, b)
    execute(b, "UPDATE t SET body = substr(body, 1, 40000) || 'b' || substr(body, 40002) WHERE id = 17")
    changes, groups = run(a, b)
    assert got(changes, "t") == [("db.t[17].body", "changed")]
    assert groups["db.t"].note == "1 rowid range(s) read, from the pages that differ"


def _leaves(path: Path) -> tuple[pages.PageReader, list[int]]:
    reader = pages.PageReader(str(path))
    root = sqlite3.connect(path).execute("SELECT rootpage FROM sqlite_schema WHERE name = 't'").fetchone()[0]
    return reader, pages.walk_tree(reader, root).order


@needs_library
@pytest.mark.parametrize("split", [False, True], ids=["one-walk", "two-halves"])
def test_a_file_that_shrinks_while_it_is_read_gives_up_quietly(tmp_path, split, monkeypatch):
    monkeypatch.setattr(cellwalk, "SPLIT_AT", 2 if split else 10**9)
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    lived(a, random.Random(1))
    vacuumed_copy(a, b)
    (ra, la), (rb, lb) = _leaves(a), _leaves(b)
    with open(b, "r+b") as f:                      # the clone's app shrinks it under the diff
        f.truncate(os.path.getsize(b) // 3)
    try:
        assert cellwalk.changed_ranges(ra, rb, la, lb) is None
    finally:
        ra.close()
        rb.close()


FUZZ = textwrap.dedent("""
    import random, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from tests.test_diff_cellwalk import _leaves
    from workbench.diff import cellwalk
    cellwalk.SPLIT_AT = int(sys.argv[4])
    if len(sys.argv) > 5:                              # another build of the library (sanitized)
        cellwalk.LIBRARY = Path(sys.argv[5])
        cellwalk._lib.cache_clear()
        assert cellwalk.available()
    a, b = Path(sys.argv[1]), Path(sys.argv[2])
    clean = b.read_bytes()
    reader, leaves = _leaves(b)
    size = reader.page_size
    reader.close()
    outcomes = {"none": 0, "ranges": 0}
    for seed in range(300):
        rng = random.Random(seed)
        data = bytearray(clean)
        for _ in range(rng.randint(1, 12)):            # bytes of leaf pages overwritten at random
            page = rng.choice(leaves)
            at = (page - 1) * size + rng.randrange(size)
            data[at] = rng.randrange(256) if rng.random() < 0.7 else rng.choice([0, 0x7F, 0x80, 0xFF])
        b.write_bytes(bytes(data))
        print(seed, flush=True)
        ra, la = _leaves(a)
        rb = cellwalk.PageReader(str(b))
        found = cellwalk.changed_ranges(ra, rb, la, leaves)
        outcomes["none" if found is None else "ranges"] += 1
        ra.close()
        rb.close()
    print(outcomes)
""")


def _sanitized(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The library built with AddressSanitizer and UBSan, and the environment that loads it:
    any read outside a buffer, overflow or undefined behaviour then ends the process."""
    lib = tmp_path / "_cells_sanitized.so"
    build = subprocess.run(["cc", "-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                            "-fno-sanitize-recover=all", "-shared", "-fPIC", "-o", str(lib),
                            str(ROOT / "workbench" / "diff" / "_cells.c")], capture_output=True, text=True)
    runtime = [subprocess.run(["cc", f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
               for name in ("libasan.so", "libubsan.so")]
    if build.returncode or not all(Path(r).is_absolute() and Path(r).exists() for r in runtime):
        if os.environ.get("CI") == "true":
            raise AssertionError(f"cannot build the library with the sanitizers: {build.stderr[-500:]} {runtime}")
        pytest.skip("the C compiler has no AddressSanitizer runtime")
    return lib, {"LD_PRELOAD": " ".join(runtime), "ASAN_OPTIONS": "detect_leaks=0",
                 "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}


@needs_library
@pytest.mark.parametrize("split", [False, True], ids=["one-walk", "two-halves"])
@pytest.mark.parametrize("sanitized", [False, True], ids=["as-built", "sanitized"])
def test_damaged_leaf_pages_never_crash_the_diff(tmp_path, split, sanitized):
    """Bytes of the clone's leaves overwritten at random, 300 times: the walk says it cannot
    read them (the diff then falls back) or gives ranges, and never crashes the process;
    built with AddressSanitizer and UBSan, it never reads outside its buffers either."""
    if sanitized and not shutil.which("cc"):
        pytest.skip("needs a C compiler")
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    lived(a, random.Random(2), rows=1500)
    vacuumed_copy(a, b)
    args, env = [str(a), str(b), str(ROOT), "2" if split else "1000000000"], dict(os.environ)
    if sanitized:
        lib, extra = _sanitized(tmp_path)
        args.append(str(lib))
        env |= extra
    res = subprocess.run([sys.executable, "-c", FUZZ, *args], capture_output=True, text=True, timeout=300, env=env)
    last = res.stdout.strip().splitlines()[-2:] if res.stdout.strip() else ["(nothing)"]
    assert res.returncode == 0, f"the walk crashed (code {res.returncode}) after seed {last}: {res.stderr[-1500:]}"
    assert "'none'" in res.stdout and "'ranges'" in res.stdout


@pytest.mark.parametrize("native", [True, False])
def test_a_changed_definition_reads_the_same_pages_as_other_rows(tmp_path, monkeypatch, native):
    """Identical pages are not identical rows when the table's definition differs: a default
    that fills a column older records lack, or two columns that swapped names."""
    if native and not cellwalk.available():
        pytest.skip("the diff's C library is not built")
    if not native:
        monkeypatch.setattr(cellwalk, "_lib", lambda: None)
    a = tmp_path / "a.db"
    conn = sqlite3.connect(a)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT, y TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, f"x{i}", f"y{i}") for i in range(1, 501)])
    conn.commit()
    conn.execute("ALTER TABLE t ADD COLUMN c INTEGER DEFAULT 1")
    conn.commit()
    conn.close()
    for change, expected, count in (("replace(sql, 'DEFAULT 1', 'DEFAULT 2')", "db.t[7].c", 500),
                             ("replace(replace(replace(sql, 'x TEXT', 'q TEXT'), 'y TEXT', 'x TEXT'), 'q TEXT', "
                              "'y TEXT')", "db.t[7].x", 1000)):
        b = tmp_path / "b.db"
        shutil.copyfile(a, b)
        conn = sqlite3.connect(b)
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute(f"UPDATE sqlite_schema SET sql = {change} WHERE name = 't'")
        conn.commit()
        conn.close()
        changes, _ = run(a, b)
        rows = [c.path for c in changes if not c.schema]
        assert expected in rows and len(rows) == count, rows[:5]


@pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler")
def test_a_library_built_from_another_source_is_left_unused(tmp_path, monkeypatch):
    """A stale library (built before its functions changed) would be called with the wrong
    arguments: it is recognised by its interface version and the diff goes without it."""
    src = tmp_path / "old.c"
    src.write_text("int repro_cells_interface(void) { return 1; }\nint repro_changed_rowids(void) { return 0; }\n")
    lib = tmp_path / "_cells.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    monkeypatch.setattr(cellwalk, "LIBRARY", lib)
    cellwalk._lib.cache_clear()
    try:
        assert not cellwalk.available()
        a, b = tmp_path / "a.db", tmp_path / "b.db"
        lived(a, random.Random(3), rows=500)
        vacuumed_copy(a, b)
        edit(b, random.Random(3), 5, rows=500)
        assert got(run(a, b)[0], "t") == naive(a, b, "t", ["id"])
    finally:
        cellwalk._lib.cache_clear()


@needs_library
def test_a_table_whose_every_row_changed_is_read_whole_not_by_ranges(tmp_path):
    """A scrubbed column changes every row: the walk says so and the table is scanned whole
    (a join on ranges covering it all was 10 % slower than the scan), with every change."""
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    lived(a, random.Random(4), rows=2000)
    vacuumed_copy(a, b)
    execute(b, "UPDATE t SET name = 'someone' || (id * 7)")
    changes, groups = run(a, b)
    assert got(changes, "t") == naive(a, b, "t", ["id"])
    assert len(got(changes, "t")) > 1800
    assert "range(s)" not in (groups["db.t"].note or "")
