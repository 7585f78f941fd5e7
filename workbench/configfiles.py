"""Config files as repro-tui reads them: found by the spec's globs, typed by their name,
parsed (YAML, JSON, TOML, INI, ``.env``) with a cache keyed by each file's identity.

The diff compares them; the redactor learns the secret values they hold.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

# ruamel.yaml reads about 0.1 MB/s in pure Python (a 4 MB file takes a minute): past this
# size a YAML file is compared line by line instead, which takes a fraction of a second
MAX_PARSE_BYTES = {"yaml": 400_000, "toml": 4_000_000, "ini": 4_000_000, "env": 4_000_000, "json": 50_000_000}
_SKIP_DIRS = {".git", ".repro", "node_modules", "__pycache__", ".venv"}
_PARSE_CACHE: dict[tuple[str, int, int, int], tuple[bytes, Any]] = {}


class Unparsed(Exception):
    """The file is not valid for its type (the message says where)."""


def matched_files(root: Path, patterns: list[str]) -> dict[str, Path]:
    """Relative POSIX path -> file, for every file the globs match under ``root``."""
    out: dict[str, Path] = {}
    if not root.is_dir():
        return out
    for pattern in patterns:
        pattern = pattern.lstrip("/")
        if pattern.startswith("./"):
            pattern = pattern[2:]
        try:
            found = list(root.glob(pattern))
        except (ValueError, NotImplementedError):
            continue
        for p in found:
            rel = p.relative_to(root)
            if p.is_file() and not (set(rel.parts[:-1]) & _SKIP_DIRS):
                out[rel.as_posix()] = p
    return dict(sorted(out.items()))


def file_type(rel: str) -> str:
    name = rel.rsplit("/", 1)[-1].lower()
    if name == ".env" or name.startswith(".env.") or name.endswith(".env"):
        return "env"
    suffix = name.rsplit(".", 1)[-1] if "." in name else ""
    return {"yaml": "yaml", "yml": "yaml", "json": "json", "toml": "toml", "ini": "ini", "cfg": "ini",
            "conf": "ini"}.get(suffix, "text")


def parse(kind: str, text: str) -> Any:
    try:
        if kind == "json":
            return json.loads(text)
        if kind == "toml":
            import tomllib
            return tomllib.loads(text)
        if kind == "yaml":
            return _yaml(text)
        if kind == "ini":
            import configparser  # (1.2 ms, for INI files only)

            cp = configparser.ConfigParser(interpolation=None, strict=False)
            cp.optionxform = str  # type: ignore[assignment,method-assign]
            cp.read_string(text)
            out: dict[str, Any] = {}
            if cp.defaults():
                out["DEFAULT"] = dict(cp.defaults())
            for section in cp.sections():
                out[section] = {k: v for k, v in cp.items(section, raw=True) if k not in cp.defaults()
                                or cp.defaults()[k] != v}
            return out
        if kind == "env":
            return parse_env(text)
    except Unparsed:
        raise
    except Exception as exc:  # every parser has its own error classes
        raise Unparsed(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    raise Unparsed("not a structured file type")


def _yaml(text: str) -> Any:
    from ruamel.yaml import YAML

    docs = list(YAML(typ="safe", pure=True).load_all(text))
    return docs[0] if len(docs) == 1 else docs


_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*=\s*(.*)$")


def parse_env(text: str) -> dict[str, str]:
    """A ``.env`` file as dotenv reads it: NAME=value lines, ``export`` allowed, # comments,
    quotes removed; a quoted value may run over several lines (a private key often does)
    and be followed by a comment."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    n = 0
    while n < len(lines):
        line = lines[n]
        n += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _ENV_LINE.match(line)
        if not m:
            raise Unparsed(f"line {n} is not NAME=value")
        value = m[2].strip()
        quote = value[:1]
        if quote in ("'", '"'):
            body = value[1:]
            start = n
            while quote not in body:
                if n >= len(lines):
                    raise Unparsed(f"line {start}: the quote {quote} is never closed")
                body += "\n" + lines[n]
                n += 1
            value, rest = body.split(quote, 1)
            if rest.strip() and not rest.strip().startswith("#"):
                raise Unparsed(f"line {n}: text after the closing quote")
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[m[1]] = value
    return out


def read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def parsed(path: Path, data: bytes, kind: str) -> Any:
    """Parse with a cache keyed by the file's identity and size, for live refreshes."""
    try:
        st = path.stat()
        key: tuple[str, int, int, int] | None = (str(path), st.st_ino, st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key is not None and key in _PARSE_CACHE and _PARSE_CACHE[key][0] == data:
        return _PARSE_CACHE[key][1]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Unparsed("not UTF-8 text") from None
    value = parse(kind, text)
    if key is not None:
        if len(_PARSE_CACHE) > 256:
            _PARSE_CACHE.clear()
        _PARSE_CACHE[key] = (data, value)
    return value
