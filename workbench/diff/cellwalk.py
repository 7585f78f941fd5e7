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
from array import array
from functools import cache
from pathlib import Path
from typing import Any

from workbench.diff.sqlitepages import PageReader

LIBRARY = Path(__file__).with_name("_cells.so")
MOST_RANGES = 65536     # more rowid ranges than this: comparing the table whole in SQL is cheaper


@cache
def _lib() -> tuple[Any, Any] | None:
    """The loaded library and its ``Side`` structure, or None."""
    if os.environ.get("REPRO_DIFF_NATIVE", "1") == "0" or not LIBRARY.exists():
        return None
    import ctypes

    try:
        lib = ctypes.CDLL(str(LIBRARY))
    except OSError:
        return None

    class Side(ctypes.Structure):
        _fields_ = [("fd", ctypes.c_int), ("wal_fd", ctypes.c_int), ("npages", ctypes.c_int64),
                    ("wal_pgno", ctypes.c_void_p), ("wal_off", ctypes.c_void_p), ("nwal", ctypes.c_int64),
                    ("leaves", ctypes.c_void_p), ("nleaves", ctypes.c_int64), ("cells", ctypes.c_int64)]

    fn = lib.repro_changed_rowids
    fn.argtypes = [ctypes.POINTER(Side), ctypes.POINTER(Side), ctypes.c_int, ctypes.c_int,
                   ctypes.c_void_p, ctypes.c_int64, ctypes.POINTER(ctypes.c_int64)]
    fn.restype = ctypes.c_int
    return fn, Side


def available() -> bool:
    return _lib() is not None


def changed_ranges(ra: PageReader, rb: PageReader, left: list[int], right: list[int]) -> list[tuple[int, int]] | None:
    """Rowid ranges holding every row whose cell differs between the leaves ``left`` (of
    ``ra``) and ``right`` (of ``rb``), each list in key order; None when the library is
    missing, a page does not read as a table leaf, or the ranges are too many to be worth it.

    Given every leaf of each side that the other side does not hold with the same bytes at
    the same page number, this is every row that differs: a leaf both sides hold alike
    holds the same rows on both, and a rowid lives on exactly one leaf of a side."""
    loaded = _lib()
    if loaded is None or ra.header.usable != rb.header.usable:
        return None
    import ctypes

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
    n = ctypes.c_int64(0)
    status = fn(ctypes.byref(a), ctypes.byref(b), ra.page_size, ra.header.usable, _address(out), MOST_RANGES,
                ctypes.byref(n))
    if status != 0:
        return None
    return [(out[2 * i], out[2 * i + 1]) for i in range(n.value)]


def _address(buf: array) -> int | None:
    return buf.buffer_info()[0] if len(buf) else None
