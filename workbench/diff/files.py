"""Diff of two folders (a ``files`` store): files added, removed, changed by content.

Content hashes are cached by (inode, size, mtime, ctime): a file whose inode has not
been touched since it was hashed is not read again, so a live refresh of a large
folder costs one ``stat`` per file. ctime cannot be set back by a program, which makes
the cache safe against tools that restore mtimes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from workbench.diff.model import Change, GroupSummary

_HASHES: dict[tuple[str, int, int, int, int], str] = {}
_MAX_CACHED = 200_000


def scan(root: str) -> dict[str, os.stat_result]:
    """Relative POSIX path -> lstat of every file under ``root`` (symlinks not followed)."""
    out: dict[str, os.stat_result] = {}
    base = Path(root)
    if not base.is_dir():
        return out
    stack = [base]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                stack.append(Path(e.path))
            else:
                try:
                    out[Path(e.path).relative_to(base).as_posix()] = e.stat(follow_symlinks=False)
                except OSError:
                    pass
    return out


def content_hash(path: str, st: os.stat_result) -> str:
    key = (path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    hit = _HASHES.get(key)
    if hit is not None:
        return hit
    if os.path.islink(path):
        digest = "link:" + os.readlink(path)
    else:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        digest = h.hexdigest()
    if len(_HASHES) > _MAX_CACHED:
        _HASHES.clear()
    _HASHES[key] = digest
    return digest


def folder_token(root: str) -> str:
    """Changes when any file under ``root`` is added, removed or written."""
    h = hashlib.blake2b(digest_size=12)
    for rel, st in sorted(scan(root).items()):
        line = f"{rel}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\n"
        h.update(line.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _info(st: os.stat_result, digest: str | None) -> dict[str, object]:
    out: dict[str, object] = {"size": st.st_size}
    if digest is not None:
        out["sha256"] = digest[:12] if not digest.startswith("link:") else digest
    return out


def diff_folders(store: str, left: str, right: str, limit: int | None = None,
                 groups: list[GroupSummary] | None = None) -> Iterator[Change]:
    """Stream file changes; sizes decide first, content hashes only when sizes are equal."""
    g = GroupSummary("data", store)
    if groups is not None:
        groups.append(g)
    a, b = scan(left), scan(right)

    def emit(ch: Change) -> bool:
        return g.count(ch.kind, limit)

    for rel in sorted(set(a) | set(b)):
        sa, sb = a.get(rel), b.get(rel)
        path = f"{store}:{rel}"
        if sb is None:
            assert sa is not None
            ch = Change("data", path, "removed", store=store, table=None, key=[rel])
            if emit(ch):
                ch.left = _info(sa, None)
                yield ch
        elif sa is None:
            ch = Change("data", path, "added", store=store, table=None, key=[rel])
            if emit(ch):
                ch.right = _info(sb, None)
                yield ch
        else:
            pa, pb = os.path.join(left, rel), os.path.join(right, rel)
            if sa.st_size == sb.st_size and content_hash(pa, sa) == content_hash(pb, sb):
                continue
            ha, hb = content_hash(pa, sa), content_hash(pb, sb)
            ch = Change("data", path, "changed", store=store, table=None, key=[rel])
            if emit(ch):
                ch.left, ch.right = _info(sa, ha), _info(sb, hb)
                yield ch
    g.status = "compared" if g.total else "same"
