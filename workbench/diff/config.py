"""Diff of config files, key by key: YAML, JSON, TOML, INI and ``.env`` parsed by type.

Files are matched by the spec's ``config_files`` globs under each side's config root.
A file with the same bytes on both sides is not parsed at all. Parsed files are compared
structurally: dictionaries are walked here (cheap, with ``==`` pruning equal subtrees at
C speed) and the remaining differing values go to deepdiff with ``ignore_order`` off (its
pairing is quadratic), a cap on reported differences and a time budget shared by all
files, so a 5 MB YAML never freezes a refresh. A file that does not parse is compared as
text (unified diff lines, secrets masked line by line).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.configfiles import MAX_PARSE_BYTES, Unparsed, file_type, matched_files, parse, parsed, read
from workbench.diff.model import Change, GroupSummary
from workbench.diff.values import Shower

BUDGET_SECONDS = 2.0
SMALL_LIST = 2000                   # lists up to this many items (both sides) are aligned by deepdiff
MAX_TEXT_BYTES = 8_000_000          # larger unparseable files: compared by size and hash only
MAX_DIFF_LINES = 20_000             # past this many differing lines, only the line counts are told


def key_path(file: str, parts: list[Any]) -> str:
    """``config/app.yaml:feature.rounding``, ``servers[0].host``, ``["a.b"]`` for odd keys."""
    out = ""
    for p in parts:
        if isinstance(p, int) and not isinstance(p, bool):
            out += f"[{p}]"
        elif re.fullmatch(r"[A-Za-z0-9_\-]+", str(p)):
            out += ("." if out else "") + str(p)
        else:
            out += f"[{json.dumps(str(p), ensure_ascii=False)}]"
    return f"{file}:{out}" if out else file


class _Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    @property
    def spent(self) -> bool:
        return time.monotonic() > self.deadline


class ConfigDiff:
    """Changes of every matched config file between two roots."""

    def __init__(self, patterns: list[str], left_root: Path, right_root: Path, shower: Shower,
                 limit: int | None = None, budget: float = BUDGET_SECONDS) -> None:
        self.patterns, self.left_root, self.right_root = patterns, left_root, right_root
        self.shower, self.limit = shower, limit
        self.budget = _Budget(budget)
        self.groups: list[GroupSummary] = []

    def changes(self) -> Iterator[Change]:
        a = matched_files(self.left_root, self.patterns)
        b = matched_files(self.right_root, self.patterns)
        for rel in sorted(set(a) | set(b)):
            g = GroupSummary("config", rel)
            self.groups.append(g)
            t0 = time.perf_counter()
            yield from self._file(rel, a.get(rel), b.get(rel), g)
            g.seconds = time.perf_counter() - t0

    def _emit(self, g: GroupSummary, ch: Change) -> bool:
        return g.count(ch.kind, self.limit)

    def _file(self, rel: str, pa: Path | None, pb: Path | None, g: GroupSummary) -> Iterator[Change]:
        if pa is None or pb is None:
            kind = "added" if pa is None else "removed"
            g.status = kind
            data = read(pb if pa is None else pa)  # type: ignore[arg-type]
            shown, masked = self._whole(rel, data)
            ch = Change("config", rel, kind, left=shown if pa else None, right=shown if pb else None, masked=masked)
            if self._emit(g, ch):
                yield ch
            return
        la, lb = _link(pa, self.left_root), _link(pb, self.right_root)
        if la != lb:   # a file made a link (to prod's own file, perhaps) differs even with the same bytes
            g.status = "changed"
            ch = Change("config", f"{rel} (link)", "changed", left=la or "a file", right=lb or "a file")
            if self._emit(g, ch):
                yield ch
        ba, bb = read(pa), read(pb)
        if ba == bb:
            if la == lb:
                g.status = "same"
            return
        kind = file_type(rel)
        try:
            if kind == "text":
                raise Unparsed("no parser for this file type")
            if max(len(ba), len(bb)) > MAX_PARSE_BYTES[kind]:
                raise Unparsed(f"{kind.upper()} over {MAX_PARSE_BYTES[kind] // 1000} KB, too slow to parse live")
            da, db = parsed(pa, ba, kind), parsed(pb, bb, kind)
        except Unparsed as exc:
            g.note = f"compared as text ({exc})"
            yield from self._text(rel, ba, bb, g)
            return
        yield from self._structured(rel, da, db, g)

    def _whole(self, rel: str, data: bytes) -> tuple[Any, bool]:
        """A file added or removed: its parsed content (masked) when small, else its size."""
        kind = file_type(rel)
        if kind != "text" and len(data) <= 64_000:
            try:
                text = data.decode("utf-8")
                return self.shower.tree(parse(kind, text))
            except (Unparsed, UnicodeDecodeError):
                pass
        return f"({len(data)} bytes)", False

    def _structured(self, rel: str, x: Any, y: Any, g: GroupSummary,
                    parts: list[Any] | None = None) -> Iterator[Change]:
        """Walk both trees in document order, descending only where ``==`` says they differ."""
        parts = parts or []
        if x == y and type(x) is type(y):
            return
        if self.budget.spent:
            if not g.note:
                g.note = f"stopped after {BUDGET_SECONDS:g} s: the rest is not compared key by key"
                ch = Change("config", key_path(rel, parts), "changed", left="(not compared)", right="(not compared)")
                if self._emit(g, ch):
                    yield ch
            return
        if isinstance(x, dict) and isinstance(y, dict):
            for k in list(x) + [k for k in y if k not in x]:
                if k not in y:
                    yield from self._one(rel, g, parts + [k], "removed", x[k], None)
                elif k not in x:
                    yield from self._one(rel, g, parts + [k], "added", None, y[k])
                else:
                    yield from self._structured(rel, x[k], y[k], g, parts + [k])
        elif isinstance(x, list) and isinstance(y, list) and (len(x) == len(y) or len(x) + len(y) > SMALL_LIST):
            # pair items by position; a big list with items inserted is not aligned (difflib is quadratic)
            for i, (xi, yi) in enumerate(zip(x, y, strict=False)):
                yield from self._structured(rel, xi, yi, g, parts + [i])
            for i in range(len(y), len(x)):
                yield from self._one(rel, g, parts + [i], "removed", x[i], None)
            for i in range(len(x), len(y)):
                yield from self._one(rel, g, parts + [i], "added", None, y[i])
        elif not isinstance(x, (dict, list)) or not isinstance(y, (dict, list)):
            yield from self._one(rel, g, parts, "changed", x, y)
        else:
            yield from self._deep(rel, g, parts, x, y)

    def _deep(self, rel: str, g: GroupSummary, parts: list[Any], x: Any, y: Any) -> Iterator[Change]:
        """deepdiff for what the walk above cannot pair (lists of different lengths, ...)."""
        from deepdiff import DeepDiff

        # only small values get here (lists of different lengths under SMALL_LIST items, or a
        # list against a mapping): deepdiff aligns such lists with difflib, quadratic at worst
        dd = DeepDiff(x, y, ignore_order=False, view="tree", cache_size=0, threshold_to_diff_deeper=0,
                      verbose_level=2)
        for report, levels in dd.items():
            kind = ("added" if report.endswith("_added") else "removed" if report.endswith("_removed")
                    else "changed")
            for level in levels:
                sub = level.path(output_format="list")
                left = None if kind == "added" else level.t1
                right = None if kind == "removed" else level.t2
                yield from self._one(rel, g, parts + list(sub), kind, left, right)

    def _one(self, rel: str, g: GroupSummary, parts: list[Any], kind: str, left: Any, right: Any) -> Iterator[Change]:
        ch = Change("config", key_path(rel, parts), kind)
        if not self._emit(g, ch):
            return
        secret = any(isinstance(p, str) and self.shower.policy.is_secret_key(p) for p in parts)
        (ch.left, m1), (ch.right, m2) = (self.shower.tree(left, secret=secret) if left is not None else (None, False),
                                         self.shower.tree(right, secret=secret) if right is not None else (None, False))
        ch.masked = m1 or m2
        yield ch

    def _text(self, rel: str, ba: bytes, bb: bytes, g: GroupSummary) -> Iterator[Change]:
        ch = Change("config", rel, "changed")
        if not self._emit(g, ch):
            return
        ta: str | None = None
        tb: str | None = None
        try:
            ta, tb = ba.decode("utf-8"), bb.decode("utf-8")
        except UnicodeDecodeError:
            pass
        if ta is None or tb is None or max(len(ba), len(bb)) > MAX_TEXT_BYTES:
            import hashlib
            ch.left = f"({len(ba)} bytes, sha256 {hashlib.sha256(ba).hexdigest()[:12]})"
            ch.right = f"({len(bb)} bytes, sha256 {hashlib.sha256(bb).hexdigest()[:12]})"
            yield ch
            return
        la, lb = ta.splitlines(), tb.splitlines()
        head = 0   # equal leading and trailing lines are cut first: difflib is quadratic at worst
        while head < min(len(la), len(lb)) and la[head] == lb[head]:
            head += 1
        tail = 0
        while tail < min(len(la), len(lb)) - head and la[-1 - tail] == lb[-1 - tail]:
            tail += 1
        keep = max(0, head - 2)
        mid_a, mid_b = la[keep:len(la) - max(0, tail - 2)], lb[keep:len(lb) - max(0, tail - 2)]
        if len(mid_a) + len(mid_b) > MAX_DIFF_LINES:
            ch.left, ch.right = f"({len(la)} lines)", f"({len(lb)} lines)"
            g.note = f"{len(mid_a) + len(mid_b)} lines differ: too many to list"
            yield ch
            return
        lines = list(difflib.unified_diff(mid_a, mid_b, f"a/{rel}", f"b/{rel}", n=2, lineterm=""))
        lines = [_shift_hunk(x, keep) for x in lines]
        ch.lines = [mask_line(line, self.shower) for line in lines]
        ch.masked = any("<secret:" in line for line in ch.lines)
        yield ch


_ASSIGN = re.compile(r"""^(?P<head>[\s+\- ]?\s*(?:export\s+)?["']?(?P<key>[A-Za-z0-9_.\-]+)["']?\s*[:=]\s*)"""
                     r"""(?P<value>.+?)(?P<tail>\s*,?\s*)$""")


def mask_line(line: str, shower: Shower) -> str:
    """A line of a text diff with secret values replaced: ``password = x``, ``"token": "x"``, URLs."""
    m = _ASSIGN.match(line)
    if m and m["value"] and shower.policy.is_secret_key(m["key"]):
        value = m["value"].strip().strip("'\"")
        line = f"{m['head']}{shower.policy.tag(value)}{m['tail']}"
    return shower.redact(line)


_HUNK = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@")


def _shift_hunk(line: str, by: int) -> str:
    """Renumber a hunk header after leading lines were cut off."""
    m = _HUNK.match(line)
    if not m or not by:
        return line
    return f"@@ -{int(m[1]) + by}{m[2] or ''} +{int(m[3]) + by}{m[4] or ''} @@{line[m.end():]}"


def _link(path: Path, root: Path) -> str | None:
    """Where a link leads, as the diff says it: inside the side's root relatively, else the
    absolute path; None for a plain file."""
    if not path.is_symlink():
        return None
    real = Path(os.path.realpath(path))
    top = Path(os.path.realpath(root))
    return f"a link to {real.relative_to(top)}" if top in real.parents else f"a link to {real}"
