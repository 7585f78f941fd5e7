"""Zeroing the bytes of a SQLite file that no row uses.

SQL cannot reach them. When SQLite splits, merges or rebuilds a b-tree page it copies the
cells it keeps to the end of the page and leaves the rest as it was, so the gap between
the cell pointers and the cells can hold stale copies of cells; a page freed without
``secure_delete`` keeps what it held; the last page of a long value's overflow chain keeps
whatever was past the value's end. A scrubbed copy is made by rewriting columns of a copy
of prod's pages (``workbench.scrub.apply_sqlite``), so this module zeroes, in the file
itself once SQLite has closed it:

* in every page of the b-trees the scrub rewrote (listed by ``dbstat``): the gap and the
  free blocks of the cell area, and the tail of each overflow chain's last page;
* every page of the freelist (a trunk page past its list of pages).

Only bytes that SQLite never reads are written, so the file stays the same database
(``PRAGMA integrity_check`` says ok), and the pages of every other b-tree are left byte for
byte as they are. Fragments of at most 3 bytes that a page counts in its header are left:
they cannot hold a value.
"""

from __future__ import annotations

import mmap
import os
import sqlite3
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_LEAF_TABLE, _INTERIOR_TABLE, _LEAF_INDEX, _INTERIOR_INDEX = 13, 5, 10, 2
_ZERO = bytes(65536)


@dataclass
class Pages:
    """The pages of some b-trees: b-tree pages, and overflow pages with the bytes unused at
    their end (the last page of each chain)."""

    btree: list[int] = field(default_factory=list)
    overflow: list[tuple[int, int]] = field(default_factory=list)  # (page, unused bytes at its end)


def pages_of(conn: sqlite3.Connection, trees: Iterable[str], schema: str = "main") -> Pages:
    """Every page of the named b-trees, from the ``dbstat`` virtual table (one walk of each
    tree, in C). Raises sqlite3.OperationalError when SQLite was built without dbstat."""
    out = Pages()
    for name in sorted(set(trees)):
        for pageno, kind, unused in conn.execute("SELECT pageno, pagetype, unused FROM dbstat(?) WHERE name = ?",
                                                 (schema, name)):
            if kind == "overflow":
                if unused:
                    out.overflow.append((pageno, unused))
            else:
                out.btree.append(pageno)
    return out


@dataclass
class Wiped:
    pages: int = 0      # pages looked at
    written: int = 0    # pages that held bytes to zero


def wipe(path: str | Path, pages: Pages) -> Wiped:
    """Zero the unused bytes of ``pages`` and of the freelist in the database file ``path``
    (which no connection may hold open, and which has no ``-wal``).

    Read through a map of the file, written with pwrite: a write into a shared mapping of a
    reflinked file allocates its block when the page is touched, and a full disk would then
    kill the process (SIGBUS) instead of raising ENOSPC."""
    done = Wiped()
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        fd = f.fileno()
        page_size = struct.unpack_from(">H", mm, 16)[0]
        page_size = 65536 if page_size == 1 else page_size
        usable = page_size - mm[20]
        count = len(mm) // page_size
        for pgno in sorted(set(pages.btree)):
            if 1 <= pgno <= count:
                done.pages += 1
                done.written += _btree_page(mm, fd, pgno, page_size, usable)
        for pgno, unused in pages.overflow:
            if 1 <= pgno <= count and 0 < unused <= usable - 4:
                done.pages += 1
                start = (pgno - 1) * page_size + usable - unused
                done.written += _zero(mm, fd, start, start + unused)
        for pgno, trunk_end in _freelist(mm, page_size, usable, count):
            done.pages += 1
            base = (pgno - 1) * page_size
            done.written += _zero(mm, fd, base + trunk_end, base + usable)
    return done


def _zero(mm: mmap.mmap, fd: int, start: int, end: int) -> int:
    """Zero bytes ``start:end`` of the file unless they are zero already; 1 if anything was written."""
    if end <= start:
        return 0
    n = end - start
    if mm[start:end] == _ZERO[:n]:
        return 0
    if os.pwrite(fd, _ZERO[:n], start) != n:
        raise OSError(f"short write zeroing {n} bytes at {start}")
    return 1


def _btree_page(mm: mmap.mmap, fd: int, pgno: int, page_size: int, usable: int) -> int:
    base = (pgno - 1) * page_size
    hdr = base + (100 if pgno == 1 else 0)
    kind = mm[hdr]
    if kind in (_INTERIOR_TABLE, _INTERIOR_INDEX):
        head = 12
    elif kind in (_LEAF_TABLE, _LEAF_INDEX):
        head = 8
    else:
        return 0  # not a b-tree page (any more): leave it
    first_free, cells, content = struct.unpack_from(">HHH", mm, hdr + 1)
    content = content or 65536
    if content > usable:
        return 0  # not what SQLite writes: leave it
    written = _zero(mm, fd, hdr + head + 2 * cells, base + content)
    # free blocks of the cell area: (next, size) then the freed bytes
    block, seen = first_free, 0
    while block and seen < usable // 4:
        nxt, size = struct.unpack_from(">HH", mm, base + block)
        if block < content or block + size > usable or size < 4:
            break
        written |= _zero(mm, fd, base + block + 4, base + block + size)
        if nxt and nxt <= block:
            break
        block, seen = nxt, seen + 1
    return written


def _freelist(mm: mmap.mmap, page_size: int, usable: int, count: int) -> list[tuple[int, int]]:
    """(page, offset where its unused bytes start): 8 + 4 per listed page for a trunk, 0 for a leaf."""
    out: list[tuple[int, int]] = []
    seen: set[int] = set()
    trunk = struct.unpack_from(">I", mm, 32)[0]
    while 1 < trunk <= count and trunk not in seen:
        seen.add(trunk)
        base = (trunk - 1) * page_size
        nxt, n = struct.unpack_from(">II", mm, base)
        n = min(n, (usable - 8) // 4)
        out.append((trunk, 8 + 4 * n))
        for leaf in struct.unpack_from(f">{n}I", mm, base + 8):
            if 1 < leaf <= count and leaf not in seen:
                seen.add(leaf)
                out.append((leaf, 0))
        trunk = nxt
    return out
