"""Reading a SQLite file page by page, without SQLite, to tell cheaply what changed.

A clone made by copying a file (or with the backup API) keeps prod's page layout, and an
application that updates a few rows rewrites only a few pages. Comparing the two files
page by page runs at the speed of the disk, and a walk of each table's interior pages
(a few dozen pages for a million rows) says which leaf pages can hold a changed row. The
row diff then reads only the rows of those pages.

Why this is exact (for a rowid table T): if every leaf page of T on one side is also a
leaf page of T on the other side with identical bytes (and identical overflow pages),
both sides hold the same rows, since a rowid lives on exactly one leaf. Any row that
differs therefore sits on a "changed" leaf on at least one side, between the rowids of
that leaf's first and last cells. Two leaves with identical bytes at different page
numbers hold the same rows too: a copy rebuilt row by row from a file written in key
order packs its leaves the same way, and those are paired in key order.

A WITHOUT ROWID table is a b-tree of keys that keeps rows on its interior pages as well;
each row lives on exactly one page, so the rows that can differ are those on the changed
pages of either side: a leaf's rows by its first and last keys, an interior page's rows
one by one.

Pages are read as SQLite readers see them: the main file with the committed frames of
the ``-wal`` file laid over it.

Longer than most modules (about 600 lines), on purpose: the b-tree format is read here and
nowhere else (headers, cells, overflow, WITHOUT ROWID keys, freelists), so that what the diff
trusts about a page is in one place, with the reasons it is exact.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

MAGIC = b"SQLite format 3\x00"
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
LEAF_TABLE, INTERIOR_TABLE, LEAF_INDEX, INTERIOR_INDEX = 13, 5, 10, 2
_INT_SIZES = (0, 1, 2, 3, 4, 6, 8)   # bytes of a record's integer, by serial type
_CHUNK = 1 << 20
_UNRELATED_AFTER = 2048   # pages compared before two files with nine pages in ten differing are called unrelated


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
        self._block = bytearray()
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
            return os.pread(self._wal_f.fileno(), self.page_size, off)
        if pgno < 1 or pgno > self.pages:
            return b""
        return os.pread(self._f.fileno(), self.page_size, (pgno - 1) * self.page_size)

    def block(self, first: int, count: int) -> bytearray:
        """``count`` pages from ``first`` on, as readers see them (WAL frames laid over). A
        block of ``_CHUNK`` bytes comes in a buffer this reader reuses, valid until its next
        call: fresh megabytes cost more to allocate than to fill."""
        size = count * self.page_size
        if size < _CHUNK:
            buf = bytearray(size)
        else:
            if len(self._block) != size:
                self._block = bytearray(size)
            buf = self._block
        n = os.preadv(self._f.fileno(), [buf], (first - 1) * self.page_size)
        if n < size:
            buf[n:] = bytes(size - n)
        for p in range(first, first + count):
            if p in self.wal:
                at = (p - first) * self.page_size
                buf[at:at + self.page_size] = self.page(p)
        return buf

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
    differ are split into pages. Two files that share almost no page where they could
    (a copy rebuilt row by row) are not split further: every page counts as differing,
    which is never wrong, only less precise. WAL pages are compared one by one afterwards."""
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
        if first > _UNRELATED_AFTER and len(out) * 10 > (first - 1) * 9:
            out.update(range(first, common + 1))
            break
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
    """The pages of one b-tree, as listed by its interior pages (its leaves are not read)."""

    root: int
    index: bool = False                                  # an index or WITHOUT ROWID tree
    leaves: dict[int, int] = field(default_factory=dict)  # leaf -> parent page (0: the root is a leaf)
    order: list[int] = field(default_factory=list)       # the leaves in key order
    interior: dict[int, bytes] = field(default_factory=dict)

    @property
    def pages(self) -> set[int]:
        return set(self.leaves) | set(self.interior)


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
        tree.order.append(root)
        return tree
    stack = [(root, first, 0)]
    seen = {root}
    while stack:
        pgno, page, level = stack.pop()
        hdr = 100 if pgno == 1 else 0
        kind = page[hdr] if page else -1
        if kind not in (INTERIOR_TABLE, INTERIOR_INDEX) or (kind == INTERIOR_INDEX) != tree.index:
            raise NotSQLite(f"page {pgno} is not a b-tree page of the tree at {root}")
        tree.interior[pgno] = page
        children = _children(page, hdr)
        fresh = set(children)
        if len(fresh) != len(children) or not fresh.isdisjoint(seen) or min(children) < 1:
            raise NotSQLite(f"the b-tree at {root} loops or points outside the file")
        seen |= fresh
        if level + 1 == depth:
            tree.leaves.update(dict.fromkeys(children, pgno))
            tree.order.extend(children)
            continue
        for child in reversed(children):   # the leftmost is popped first: leaves come in key order
            stack.append((child, reader.page(child), level + 1))
    return tree


def _children(page: bytes, hdr: int) -> list[int]:
    """Child page numbers of an interior page, left to right (the right-most pointer last)."""
    ncells = struct.unpack_from(">H", page, hdr + 3)[0]
    ptrs = struct.unpack_from(f">{ncells}H", page, hdr + 12)
    out = [struct.unpack_from(">I", page, p)[0] for p in ptrs]
    out.append(struct.unpack_from(">I", page, hdr + 8)[0])
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


WHOLE = 4             # changed leaves past 1/WHOLE of a table's: compare it whole, row by row
MATCH_AFTER = 64      # more changed leaves than this: look for leaves whose content moved
MATCH_GIVE_UP = 16    # no identical leaf among the first this many: the layouts differ, stop looking


Exact = Callable[[PageReader, PageReader, list[int], list[int]], "list[tuple[int, int]] | None"]


def changed_ranges(ra: PageReader, rb: PageReader, a: Tree, b: Tree, diff: set[int], exact: Exact | None = None
                   ) -> list[tuple[int, int]] | None:
    """Rowid ranges holding every row that differs between two rowid tables, merged and
    sorted; ``[]`` when the table is identical, None when it is best compared whole.

    A leaf of one side that is also a leaf of the other, with the same bytes, holds the
    same rows on both sides. So does a pair of leaves with the same bytes at different
    page numbers (a rebuilt copy of a file written in key order packs its rows the same
    way): those are paired in key order. The rest ("changed" leaves) hold every row that
    can differ, and each is read for the rowids of its first and last cell.

    ``exact`` (``cellwalk.changed_ranges``), when given, reads the cells of the changed
    leaves of both sides and narrows them to the rows whose bytes differ; where it cannot
    (None), the leaves' spans are used as above."""
    if a.index or b.index:
        raise ValueError("not rowid tables")
    left = [p for p in a.order if p in diff or p not in b.leaves]
    right = [p for p in b.order if p in diff or p not in a.leaves]
    if not left and not right:
        return []
    if exact is not None and (found := exact(ra, rb, left, right)) is not None:
        return found
    if len(left) + len(right) > MATCH_AFTER:
        left, right = _unmatched(ra, rb, left, right)
    if (len(left) + len(right)) * WHOLE > len(a.order) + len(b.order):
        return None
    spans = [span for reader, leaves in ((ra, left), (rb, right)) for p in leaves
             if (span := leaf_span(reader.page(p), 100 if p == 1 else 0)) is not None]
    spans.sort()
    merged: list[tuple[int, int]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def leaf_span(page: bytes, hdr: int) -> tuple[int, int] | None:
    """The rowids of the first and last cells of a table leaf (None: it holds none)."""
    ncells = struct.unpack_from(">H", page, hdr + 3)[0]
    if not ncells:
        return None
    first, last = struct.unpack_from(">H", page, hdr + 8)[0], struct.unpack_from(">H", page, hdr + 6 + 2 * ncells)[0]
    return _cell_rowid(page, first), _cell_rowid(page, last)


def _cell_rowid(page: bytes, at: int) -> int:
    _size, pos = varint(page, at)
    return _signed(varint(page, pos)[0])


def _unmatched(ra: PageReader, rb: PageReader, left: list[int], right: list[int]) -> tuple[list[int], list[int]]:
    """The changed leaves of each side left once those with an identical twin are paired.

    Both lists are in key order; a pair is two leaves with the same bytes. Runs of pages
    that follow each other on both sides (a file written in key order) are compared a
    block at a time. Where two leaves differ, the side whose leaf starts at the lower rowid
    has no twin for it."""
    out_l: list[int] = []
    out_r: list[int] = []
    i = j = paired = tried = 0
    most = window = _CHUNK // ra.page_size
    while i < len(left) and j < len(right):
        same, read = _same_run(ra, rb, left, right, i, j, window)
        window = min(most, window * 2) if same == read else 16   # small reads near changes
        if same:
            i, j, paired = i + same, j + same, paired + same
            continue
        tried += 1
        if not paired and tried >= MATCH_GIVE_UP:
            break
        sa = leaf_span(ra.page(left[i]), 100 if left[i] == 1 else 0)
        sb = leaf_span(rb.page(right[j]), 100 if right[j] == 1 else 0)
        if sa is None or (sb is not None and sa[0] < sb[0]):
            out_l.append(left[i])
            i += 1
        elif sb is None or sb[0] < sa[0]:
            out_r.append(right[j])
            j += 1
        else:
            out_l.append(left[i])
            out_r.append(right[j])
            i, j = i + 1, j + 1
    return out_l + left[i:], out_r + right[j:]


def _same_run(ra: PageReader, rb: PageReader, left: list[int], right: list[int], i: int, j: int,
              window: int) -> tuple[int, int]:
    """How many leaves from ``left[i]`` and ``right[j]`` on are pairwise identical, of how
    many read (``window`` at most, pages that follow each other on both sides)."""
    n = 1
    limit = min(len(left) - i, len(right) - j, window)
    while n < limit and left[i + n] == left[i] + n and right[j + n] == right[j] + n:
        n += 1
    x, y = ra.block(left[i], n), rb.block(right[j], n)
    if x == y:
        return n, n
    size = ra.page_size
    for k in range(n):
        if x[k * size:(k + 1) * size] != y[k * size:(k + 1) * size]:
            return k, n
    return n, n


# --- WITHOUT ROWID tables: the keys on the pages that changed ---------------------------

class Text(bytes):
    """A TEXT value read from a record, as stored (in the database's encoding)."""


@dataclass
class KeySet:
    """Rows of one side of a WITHOUT ROWID table, by key: a leaf's rows by its first and
    last keys (the keys of a leaf lie between them, in key order), and each row of an
    interior page by its own key. No two spans overlap and no point lies in a span."""

    spans: list[tuple[tuple, tuple]] = field(default_factory=list)
    points: list[tuple] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.spans or self.points)


def changed_keys(ra: PageReader, rb: PageReader, a: Tree, b: Tree, diff: set[int], ncols: int,
                 ordered: bool = True) -> tuple[KeySet, KeySet] | None:
    """The rows of each side of an index-organised (WITHOUT ROWID) table that can differ:
    those on the pages of its tree that changed (two empty sets: none did); None when the
    table is best compared whole (many pages changed, or a key spills to overflow).

    Such a tree keeps rows on its interior pages too, each row on exactly one page: a page
    both trees share with the same bytes holds the same rows on both sides, so a row that
    differs lies on a changed page of its side. ``ordered`` is False when a key column
    sorts descending: leaves are then read key by key, as their span would not compare."""
    if not (a.index and b.index):
        raise ValueError("not index trees")
    pages_a, pages_b = a.pages, b.pages
    left = [p for p in pages_a if p in diff or p not in pages_b]
    right = [p for p in pages_b if p in diff or p not in pages_a]
    if (len(left) + len(right)) * WHOLE > len(pages_a) + len(pages_b):
        return None
    sides = []
    for reader, tree, pgs in ((ra, a, left), (rb, b, right)):
        keys = KeySet()
        for p in pgs:
            page, hdr = reader.page(p), 100 if p == 1 else 0
            leaf = p in tree.leaves
            found = index_keys(page, hdr, reader.header.usable, ncols, ends_only=leaf and ordered)
            if found is None:
                return None
            if leaf and ordered:
                keys.spans.extend([(found[0], found[-1])] if found else [])
            else:
                keys.points.extend(found)
        sides.append(keys)
    return sides[0], sides[1]


def index_keys(page: bytes, hdr: int, usable: int, ncols: int, ends_only: bool = False) -> list[tuple] | None:
    """The first ``ncols`` values of every record on an index b-tree page (of its first and
    last with ``ends_only``), each tagged with its storage class (``("t", Text)``,
    ``("i", 1)``, ...) so that ``1`` and ``1.0``, or ``'a'`` and ``x'61'``, stay apart;
    None when one does not lie whole on the page."""
    kind = page[hdr]
    if kind not in (LEAF_INDEX, INTERIOR_INDEX):
        return None
    ncells = struct.unpack_from(">H", page, hdr + 3)[0]
    start = hdr + (8 if kind == LEAF_INDEX else 12)
    ptrs = struct.unpack_from(f">{ncells}H", page, start)
    if ends_only and ncells > 2:
        ptrs = (ptrs[0], ptrs[-1])
    most = (usable - 12) * 64 // 255 - 23        # the largest payload an index cell keeps whole
    out = []
    for at in ptrs:
        size, pos = varint(page, at + (4 if kind == INTERIOR_INDEX else 0))
        local = size if size <= most else min(most, (usable - 12) * 32 // 255 - 23)  # at least this much is here
        key = _record_prefix(page[pos:pos + local], ncols)
        if key is None:
            return None
        out.append(key)
    return out


def _record_prefix(record: bytes, ncols: int) -> tuple | None:
    head = record[0] if record else 0
    if 0 < head < 0x80 and ncols < head and max(record[1:ncols + 1]) < 0x80:
        types: list[int] = list(record[1:ncols + 1])      # the usual short header: a byte per type
    else:
        head, pos = varint(record, 0)
        types = []
        while pos < head and len(types) < ncols:
            t, pos = varint(record, pos)
            types.append(t)
    if len(types) < ncols or head > len(record):
        return None
    values: list[tuple] = []
    at = head
    for t in types:
        if t >= 12:
            n = (t - 12) // 2
            raw = record[at:at + n]
            values.append(("t", Text(raw)) if t % 2 else ("b", raw))
        elif 1 <= t <= 6:
            n = _INT_SIZES[t]
            values.append(("i", int.from_bytes(record[at:at + n], "big", signed=True)))
        elif t == 7:
            n = 8
            values.append(("r", struct.unpack_from(">d", record, at)[0]))
        elif t in (0, 8, 9):
            n = 0
            values.append(("n", None) if t == 0 else ("i", t - 8))
        else:
            return None
        at += n
        if at > len(record):
            return None
    return tuple(values)
