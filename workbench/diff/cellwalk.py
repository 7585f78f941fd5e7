"""The rows of a rowid table whose cells differ, read from its changed leaves in C.

Where two files lay out a table's rows differently (a clone VACUUMed, prod grown and
shrunk since the fork), no leaf page pairs with another and the page comparison alone
would leave the whole table to SQLite, which decodes and compares every column of every
row. ``_cells.c`` instead merges both sides' leaf cells by rowid and compares their stored
bytes, and SQLite then reads only the rows whose bytes differ. Equal bytes are an equal row
(same text encoding and page layout, checked by the caller; the table's definition equal
too, see ``sqlite.plan_from_pages``); different bytes are only a row to look at, which
SQLite decides.

The library is built when the package is installed (``hatch_build.py``, a C compiler is
needed). Without it ``changed_ranges`` returns None and the diff takes its other paths:
the same changes, found more slowly. ``REPRO_DIFF_NATIVE=0`` turns it off (to compare).
"""

from __future__ import annotations

import os
import struct
from array import array
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from workbench.diff.sqlitepages import INT64_MAX, INT64_MIN, LEAF_TABLE, WHOLE, PageReader, leaf_span

LIBRARY = Path(__file__).with_name("_cells.so")
MOST_RANGES = 65536     # more rowid ranges than this: comparing the table whole in SQL is cheaper
SPLIT_AT = 512          # leaves (2 MB of 4 KB pages) from which the walk runs on two threads
INTERFACE = 3           # the version of _cells.c's functions this module calls


@cache
def _lib() -> tuple[Any, Any] | None:
    """The loaded library and its ``Side`` structure, or None."""
    if os.environ.get("REPRO_DIFF_NATIVE", "1") == "0" or not LIBRARY.exists():
        return None
    import ctypes

    try:
        lib = ctypes.CDLL(str(LIBRARY))
        version = lib.repro_cells_interface
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_int
    if version() != INTERFACE:   # built from another source: unused until the install builds it again
        return None

    class Side(ctypes.Structure):
        _fields_ = [("fd", ctypes.c_int), ("wal_fd", ctypes.c_int), ("npages", ctypes.c_int64),
                    ("wal_pgno", ctypes.c_void_p), ("wal_off", ctypes.c_void_p), ("nwal", ctypes.c_int64),
                    ("leaves", ctypes.c_void_p), ("nleaves", ctypes.c_int64), ("cells", ctypes.c_int64)]

    fn = lib.repro_changed_rowids
    fn.argtypes = [ctypes.POINTER(Side), ctypes.POINTER(Side), ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                   ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.POINTER(ctypes.c_int64),
                   ctypes.POINTER(ctypes.c_int64)]
    fn.restype = ctypes.c_int
    return fn, Side


def available() -> bool:
    return _lib() is not None


def changed_ranges(ra: PageReader, rb: PageReader, left: list[int], right: list[int]) -> list[tuple[int, int]] | None:
    """Rowid ranges holding every row whose cell differs between the leaves ``left`` (of
    ``ra``) and ``right`` (of ``rb``), each list in key order; None when the library is
    missing, a page does not read as a table leaf, or the rows to read are too many for
    ranges to be worth it (more than a quarter of the table's: it is then compared whole).

    Given every leaf of each side that the other side does not hold with the same bytes at
    the same page number, this is every row that differs: a leaf both sides hold alike
    holds the same rows on both, and a rowid lives on exactly one leaf of a side.

    Many leaves are read in two halves of the rowids at once, on two threads (the library
    lets Python run meanwhile): on a machine with a second core idle, in half the time."""
    if _lib() is None or ra.header.usable != rb.header.usable:
        return None
    halves = _halves(ra, rb, left, right) if len(left) + len(right) >= SPLIT_AT and (os.cpu_count() or 1) > 1 else None
    if halves is None:
        walks = [_walk(ra, rb, left, right, INT64_MIN, INT64_MAX)]
    else:
        import threading

        (l1, r1, hi1), (l2, r2, lo2) = halves
        second: list[Walked | None] = [None]
        worker = threading.Thread(target=lambda: second.__setitem__(0, _walk(ra, rb, l2, r2, lo2, INT64_MAX)))
        worker.start()
        walks = [_walk(ra, rb, l1, r1, INT64_MIN, hi1)]
        worker.join()
        walks.append(second[0])
    if any(w is None for w in walks):
        return None
    done = [w for w in walks if w is not None]
    ranges = [r for w in done for r in w.ranges]
    # most rows differ (a scrubbed column): a scan of the whole table reads them faster than ranges do
    if len(ranges) > MOST_RANGES or sum(w.marked for w in done) * WHOLE > sum(w.cells for w in done):
        return None
    return ranges


@dataclass
class Walked:
    ranges: list[tuple[int, int]]
    marked: int    # rowids in the ranges
    cells: int     # cells read on the side that has more


def _halves(ra: PageReader, rb: PageReader, left: list[int], right: list[int]
            ) -> tuple[tuple[list[int], list[int], int], tuple[list[int], list[int], int]] | None:
    """The leaves split at the first rowid ``r`` of the middle leaf of ``left``: (left's leaves
    below r, right's leaves that can hold one, r - 1) and (those from r on, r). The right leaf
    that holds r goes to both halves, each reading its own rowids. None: no split."""
    if len(left) < 2 or not right:
        return None
    m = len(left) // 2
    r = _first_rowid(ra, left[m])
    if r is None or r == INT64_MIN:
        return None
    lo, hi = 0, len(right)                   # the last right leaf whose first rowid is at most r
    while lo < hi:
        mid = (lo + hi) // 2
        first = _first_rowid(rb, right[mid])
        if first is None:
            return None
        if first <= r:
            lo = mid + 1
        else:
            hi = mid
    j = max(lo - 1, 0)
    return (left[:m], right[:j + 1], r - 1), (left[m:], right[j:], r)


def _first_rowid(reader: PageReader, pgno: int) -> int | None:
    """The first rowid on a table leaf; None when the page is not one (or holds none)."""
    page, hdr = reader.page(pgno), 100 if pgno == 1 else 0
    if len(page) < reader.page_size or page[hdr] != LEAF_TABLE:
        return None
    try:
        span = leaf_span(page, hdr)
    except (IndexError, struct.error):
        return None
    return span[0] if span else None


def _walk(ra: PageReader, rb: PageReader, left: list[int], right: list[int], lo: int, hi: int) -> Walked | None:
    import ctypes

    loaded = _lib()
    assert loaded is not None
    fn, side_type = loaded
    keep: list[array] = []

    def side(reader: PageReader, leaves: list[int]) -> Any:
        pages = array("I", leaves)
        wal = sorted(reader.wal.items())
        wal_pgno, wal_off = array("I", [p for p, _ in wal]), array("q", [o for _, o in wal])
        keep.extend((pages, wal_pgno, wal_off))
        wal_f = reader._wal_f   # noqa: SLF001 - the reader's own files, read-only
        return side_type(reader._f.fileno(), wal_f.fileno() if wal_f and wal else -1,  # noqa: SLF001
                         reader.pages, _address(wal_pgno), _address(wal_off), len(wal),
                         _address(pages), len(leaves), 0)

    a, b = side(ra, left), side(rb, right)
    out = array("q", [0]) * (2 * MOST_RANGES)
    n, marked = ctypes.c_int64(0), ctypes.c_int64(0)
    status = fn(ctypes.byref(a), ctypes.byref(b), ra.page_size, ra.header.usable, lo, hi, _address(out),
                MOST_RANGES, ctypes.byref(n), ctypes.byref(marked))
    if status != 0:
        return None
    return Walked([(out[2 * i], out[2 * i + 1]) for i in range(n.value)], marked.value, max(a.cells, b.cells))


def _address(buf: array) -> int | None:
    return buf.buffer_info()[0] if len(buf) else None
