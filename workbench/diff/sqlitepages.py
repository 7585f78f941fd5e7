"""Reading a SQLite file page by page, without SQLite, to tell cheaply what changed.

A clone made by copying a file (or with the backup API) keeps prod's page layout, and an
application that updates a few rows rewrites only a few pages. Comparing the two files
page by page runs at the speed of the disk, and a walk of each table's interior pages
(a few dozen pages for a million rows) says which leaf pages, hence which rowid ranges,
can hold a changed row. The row diff then reads only those ranges.

Why this is exact (for a rowid table T): if every leaf page of T on one side is also a
leaf page of T on the other side with identical bytes (and identical overflow pages),
both sides hold the same rows, since a rowid lives on exactly one leaf. Any row that
differs therefore sits on a "changed" leaf on at least one side, inside that leaf's
routing range (the rowids its parents send to it).

Pages are read as SQLite readers see them: the main file with the committed frames of
the ``-wal`` file laid over it.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

MAGIC = b"SQLite format 3\x00"
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
LEAF_TABLE, INTERIOR_TABLE, LEAF_INDEX, INTERIOR_INDEX = 13, 5, 10, 2
_CHUNK = 1 << 20


class NotSQLite(Exception):
    """The file is not a SQLite database, or its pages do not read as a valid b-tree."""


def store_token(path: str) -> str:
    """A token that changes whenever a committed transaction changes the file.

    Made of the stat of the file and of its ``-wal``/``-shm`` companions plus the few
    header fields SQLite bumps on every commit (the file change counter; in WAL mode the
    wal-index change counter and last frame). A few system calls: microseconds at any size.
    """
    parts = []
    for suffix, head in (("", 100), ("-wal", 32), ("-shm", 48)):
        p = path + suffix
        try:
            st = os.stat(p)
        except OSError:
            parts.append(f"{suffix}:-")
            continue
        parts.append(f"{suffix}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}")
        try:
            with open(p, "rb") as f:
                data = f.read(head)
        except OSError:
            continue
        if suffix == "":
            parts.append(data[24:28].hex() + data[92:96].hex())
        else:
            parts.append(data.hex())
    return hashlib.blake2b("|".join(parts).encode(), digest_size=12).hexdigest()


@dataclass
class Header:
    page_size: int
    usable: int
    change_counter: int
    pages: int
    freelist_trunk: int
    encoding: int
    autovacuum: bool


class PageReader:
    """Committed pages of one SQLite file: the main file, with the ``-wal`` frames on top."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._f = open(path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise NotSQLite(f"{path}: {exc.strerror}") from None
        raw = self._f.read(100)
        if len(raw) < 100 or raw[:16] != MAGIC:
            self._f.close()
            raise NotSQLite(f"{path}: not a SQLite database")
        page_size = struct.unpack(">H", raw[16:18])[0]
        page_size = 65536 if page_size == 1 else page_size
        counter = struct.unpack(">I", raw[24:28])[0]
        in_header = struct.unpack(">I", raw[28:32])[0]
        valid_for = struct.unpack(">I", raw[92:96])[0]
        file_pages = os.fstat(self._f.fileno()).st_size // page_size
        pages = in_header if in_header and valid_for == counter else file_pages
        self.header = Header(page_size=page_size, usable=page_size - raw[20], change_counter=counter,
                             pages=pages, freelist_trunk=struct.unpack(">I", raw[32:36])[0],
                             encoding=struct.unpack(">I", raw[56:60])[0],
                             autovacuum=struct.unpack(">I", raw[52:56])[0] != 0)
        self.wal: dict[int, int] = {}   # page number -> offset of its latest committed frame
        self._wal_f: BinaryIO | None = None
        self._load_wal()

    def close(self) -> None:
        self._f.close()
        if self._wal_f:
            self._wal_f.close()

    def __enter__(self) -> PageReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def page_size(self) -> int:
        return self.header.page_size

    @property
    def pages(self) -> int:
        return self.header.pages

    def _load_wal(self) -> None:
        try:
            wal = open(self.path + "-wal", "rb")  # noqa: SIM115 - kept open until close()
        except OSError:
            return
        head = wal.read(32)
        if len(head) < 32 or struct.unpack(">I", head[:4])[0] not in (0x377F0682, 0x377F0683):
            wal.close()
            return
        page_size = struct.unpack(">I", head[8:12])[0]
        if page_size != self.page_size:
            wal.close()
            raise NotSQLite(f"{self.path}-wal: page size {page_size} differs from the database's")
        salt = head[16:24]
        max_frame = self._shm_max_frame(salt)
        frame = 0
        pending: dict[int, int] = {}
        size = os.fstat(wal.fileno()).st_size
        offset = 32
        while offset + 24 + page_size <= size and (max_frame is None or frame < max_frame):
            wal.seek(offset)
            fh = wal.read(24)
            if fh[8:16] != salt:
                break
            pgno, commit = struct.unpack(">II", fh[:8])
            pending[pgno] = offset + 24
            frame += 1
            if commit:
                self.wal.update(pending)
                pending.clear()
                self.header.pages = commit
            offset += 24 + page_size
        if self.wal:
            self._wal_f = wal
        else:
            wal.close()

    def _shm_max_frame(self, salt: bytes) -> int | None:
        """The last committed frame from the wal-index, when it belongs to this WAL."""
        try:
            with open(self.path + "-shm", "rb") as f:
                hdr = f.read(48)
        except OSError:
            return None
        if len(hdr) < 48 or not hdr[12] or hdr[32:40] != salt:
            return None
        return int(struct.unpack("=I", hdr[16:20])[0])

    def page(self, pgno: int) -> bytes:
        off = self.wal.get(pgno)
        if off is not None and self._wal_f is not None:
            self._wal_f.seek(off)
            return self._wal_f.read(self.page_size)
        if pgno < 1 or pgno > self.pages:
            return b""
        self._f.seek((pgno - 1) * self.page_size)
        return self._f.read(self.page_size)

    def chunk_into(self, first: int, buf: bytearray) -> int:
        """Fill ``buf`` with the main file's pages from ``first`` on (WAL frames not applied).

        Returns the bytes read; the rest of ``buf`` is zeroed so two short reads compare right."""
        self._f.seek((first - 1) * self.page_size)
        n = self._f.readinto(buf) or 0
        if n < len(buf):
            buf[n:] = bytes(len(buf) - n)
        return n


def differing_pages(a: PageReader, b: PageReader) -> set[int]:
    """Page numbers whose committed bytes differ (or exist on one side only).

    Reads both files once, in large chunks compared at memory speed; only chunks that
    differ are split into pages. WAL pages are compared one by one afterwards."""
    if a.page_size != b.page_size:
        raise NotSQLite("page sizes differ")
    size = a.page_size
    per = max(1, _CHUNK // size)
    common = min(a.pages, b.pages)
    out: set[int] = set()
    bufa, bufb = bytearray(per * size), bytearray(per * size)
    first = 1
    while first <= common:
        n = min(per, common - first + 1)
        ka, kb = a.chunk_into(first, bufa), b.chunk_into(first, bufb)
        if ka != kb or bufa != bufb:
            _split(memoryview(bufa), memoryview(bufb), first, n, size, out)
        first += n
    out.update(range(common + 1, max(a.pages, b.pages) + 1))
    for pgno in set(a.wal) | set(b.wal):
        if pgno <= common:
            if a.page(pgno) != b.page(pgno):
                out.add(pgno)
            else:
                out.discard(pgno)
    return out


def _split(x: memoryview, y: memoryview, first: int, n: int, size: int, out: set[int]) -> None:
    """Add the differing pages among ``n`` pages of two equal-length buffers (by blocks of 16)."""
    block = 16
    for start in range(0, n, block):
        stop = min(n, start + block)
        if x[start * size:stop * size].tobytes() == y[start * size:stop * size].tobytes():
            continue
        for i in range(start, stop):
            if x[i * size:(i + 1) * size].tobytes() != y[i * size:(i + 1) * size].tobytes():
                out.add(first + i)


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    """SQLite's big-endian varint at ``pos``: (value, next position)."""
    value = 0
    for i in range(8):
        byte = buf[pos + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos + i + 1
    return (value << 8) | buf[pos + 8], pos + 9


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= (1 << 63) else v


@dataclass
class Tree:
    """The pages of one b-tree, as listed by its interior pages.

    Leaves map to the interior page that points to them; a leaf's rowid routing range
    (the rowids its parents send to it) is decoded only when asked, since only the few
    leaves that differ need one."""

    root: int
    index: bool = False                                  # an index or WITHOUT ROWID tree
    leaves: dict[int, int] = field(default_factory=dict)  # leaf -> parent page (0: the root is a leaf)
    interior: dict[int, tuple[bytes, int, int]] = field(default_factory=dict)  # page -> (bytes, lo, hi)
    _kids: dict[int, list[int]] = field(default_factory=dict, repr=False)

    @property
    def pages(self) -> set[int]:
        return set(self.leaves) | set(self.interior)

    def leaf_range(self, leaf: int) -> tuple[int, int]:
        """Inclusive rowid bounds of what can live on ``leaf`` (lo > hi: nothing)."""
        parent = self.leaves[leaf]
        if not parent:
            return INT64_MIN, INT64_MAX
        page, lo, hi = self.interior[parent]
        hdr = 100 if parent == 1 else 0
        children = self._kids.get(parent)
        if children is None:
            children = self._kids[parent] = _children(page, hdr)
        i = children.index(leaf)
        ncells = len(children) - 1
        ptrs = struct.unpack_from(f">{ncells}H", page, hdr + 12)
        below = lo if i == 0 else _signed(varint(page, ptrs[i - 1] + 4)[0]) + 1
        above = hi if i == ncells else min(hi, _signed(varint(page, ptrs[i] + 4)[0]))
        return below, above


def walk_tree(reader: PageReader, root: int) -> Tree:
    """Read the interior pages of the b-tree at ``root``; leaves are listed, not read.

    SQLite keeps every leaf of a b-tree at the same depth, so the depth is found once
    down the leftmost edge, and pages one level above it name their children as leaves
    without those being read: a million-row table costs a few dozen page reads."""
    first = reader.page(root)
    if not first:
        raise NotSQLite(f"page {root} is beyond the end of the file")
    tree = Tree(root=root, index=first[100 if root == 1 else 0] in (LEAF_INDEX, INTERIOR_INDEX))
    depth, page, pgno = 0, first, root
    while True:
        kind = page[100 if pgno == 1 else 0] if page else -1
        if kind in (LEAF_TABLE, LEAF_INDEX):
            break
        if kind not in (INTERIOR_TABLE, INTERIOR_INDEX) or depth > 64:
            raise NotSQLite(f"page {pgno} is not a b-tree page of the tree at {root}")
        pgno = _children(page, 100 if pgno == 1 else 0)[0]
        page = reader.page(pgno)
        depth += 1
    if depth == 0:
        tree.leaves[root] = 0
        return tree
    stack = [(root, INT64_MIN, INT64_MAX, first, 0)]
    seen = {root}
    while stack:
        pgno, lo, hi, page, level = stack.pop()
        hdr = 100 if pgno == 1 else 0
        kind = page[hdr] if page else -1
        if kind not in (INTERIOR_TABLE, INTERIOR_INDEX) or (kind == INTERIOR_INDEX) != tree.index:
            raise NotSQLite(f"page {pgno} is not a b-tree page of the tree at {root}")
        tree.interior[pgno] = (page, lo, hi)
        children = _children(page, hdr)
        fresh = set(children)
        if len(fresh) != len(children) or not fresh.isdisjoint(seen) or min(children) < 1:
            raise NotSQLite(f"the b-tree at {root} loops or points outside the file")
        seen |= fresh
        if level + 1 == depth:
            tree.leaves.update(dict.fromkeys(children, pgno))
            continue
        bounds = _child_bounds(page, hdr, kind, lo, hi)
        for child, (clo, chi) in zip(children, bounds, strict=False):
            stack.append((child, clo, chi, reader.page(child), level + 1))
    return tree


def _children(page: bytes, hdr: int) -> list[int]:
    """Child page numbers of an interior page, left to right (the right-most pointer last)."""
    ncells = struct.unpack_from(">H", page, hdr + 3)[0]
    ptrs = struct.unpack_from(f">{ncells}H", page, hdr + 12)
    out = [struct.unpack_from(">I", page, p)[0] for p in ptrs]
    out.append(struct.unpack_from(">I", page, hdr + 8)[0])
    return out


def _child_bounds(page: bytes, hdr: int, kind: int, lo: int, hi: int) -> list[tuple[int, int]]:
    ncells = struct.unpack_from(">H", page, hdr + 3)[0]
    if kind != INTERIOR_TABLE:
        return [(lo, hi)] * (ncells + 1)
    ptrs = struct.unpack_from(f">{ncells}H", page, hdr + 12)
    out, prev = [], lo
    for p in ptrs:
        key = _signed(varint(page, p + 4)[0])
        out.append((prev, min(key, hi)))
        prev = key + 1
    out.append((prev, hi))
    return out


def freelist_pages(reader: PageReader) -> set[int]:
    out: set[int] = set()
    trunk = reader.header.freelist_trunk
    while trunk and trunk not in out and len(out) <= reader.pages:
        out.add(trunk)
        page = reader.page(trunk)
        if len(page) < 8:
            break
        nxt, count = struct.unpack_from(">II", page, 0)
        count = min(count, (len(page) - 8) // 4)
        out.update(struct.unpack_from(f">{count}I", page, 8))
        trunk = nxt
    return out


def bookkeeping_pages(reader: PageReader) -> set[int]:
    """Pages that belong to no b-tree by design: the lock-byte page and pointer maps."""
    out = {1 + (1 << 30) // reader.page_size}
    if reader.header.autovacuum:
        step = reader.header.usable // 5 + 1
        out.update(range(2, reader.pages + 1, step))
    return out


def changed_ranges(a: Tree, b: Tree, diff: set[int]) -> list[tuple[int, int]] | None:
    """Rowid ranges that can hold a differing row of a rowid table, merged and sorted.

    ``[]`` means the table is identical on both sides; None means it cannot be told
    from the pages (an index-organised tree changed): compare the whole table."""
    changed: list[tuple[int, int]] = []
    for mine, other in ((a, b), (b, a)):
        moved = (mine.leaves.keys() & diff) | (mine.leaves.keys() - other.leaves.keys())
        for leaf in moved:
            lo, hi = mine.leaf_range(leaf)
            if lo <= hi:
                changed.append((lo, hi))
    if a.index or b.index:
        same = a.index == b.index and a.pages == b.pages and not (a.pages & diff)
        return [] if same else None
    changed.sort()
    merged: list[tuple[int, int]] = []
    for lo, hi in changed:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged
