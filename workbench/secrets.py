"""Which values are secret, and how they are masked in every output.

A value is secret when its key's words include password, passwd, pwd, secret, token,
api key, private key, access key, credential(s), auth, or key as a whole word
(``DB_KEY`` yes, ``KEYBOARD`` and ``primary_key`` no), or when it is a URL with a
password. Masked values read ``<secret:1a2b3c>``: a short keyed hash, so that equal
values can be recognised without being shown.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

_SECRET_WORDS = {
    "password",
    "passwd",
    "pwd",
    "secret",
    "secrets",
    "token",
    "tokens",
    "credential",
    "credentials",
    "auth",
    "apikey",
    "passphrase",
    "pass",
    "authorization",
    "bearer",
    "cookie",
}
_SECRET_PAIRS = {
    ("api", "key"),
    ("private", "key"),
    ("access", "key"),
    ("secret", "key"),
    ("api", "keys"),
    ("private", "keys"),
    ("access", "keys"),
}
_NOT_SECRET_PAIRS = {
    ("primary", "key"),
    ("foreign", "key"),
    ("sort", "key"),
    ("partition", "key"),
    ("cache", "key"),
    ("unique", "key"),
}
_URL_PASSWORD = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")

MASK_PREFIX = "<secret:"
_MASK = re.compile(r"<secret:[0-9a-f]{6}>")


def is_mask(value: str) -> bool:
    """Whether ``value`` is a mask itself (``<secret:1a2b3c>``)."""
    return _MASK.fullmatch(value) is not None


def _words(key: str) -> list[str]:
    # split camelCase, snake_case, kebab-case, dotted paths
    key = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key)
    return [w for w in re.split(r"[^A-Za-z0-9]+", key.lower()) if w]


class SecretPolicy:
    """Decides what is secret; ``extra`` names are always secret, ``allowed`` never."""

    def __init__(self, extra: Iterable[str] = (), allowed: Iterable[str] = (), key: bytes | None = None):
        self.extra = {e.lower() for e in extra}
        self.allowed = {a.lower() for a in allowed}
        self._key = key or _default_key()
        self._decided: dict[str, bool] = {}   # is_secret_key's answers: a diff asks per value shown

    @property
    def key(self) -> bytes:
        """The key of the masks' hash (a workspace's own, so masks read the same everywhere)."""
        return self._key

    def is_secret_key(self, key: str) -> bool:
        decided = self._decided.get(key)
        if decided is None:
            if len(self._decided) >= 4096:   # names read from free text: kept few
                self._decided.clear()
            decided = self._decided[key] = self._is_secret_key(key)
        return decided

    def _is_secret_key(self, key: str) -> bool:
        last = key.rsplit(".", 1)[-1].rsplit(":", 1)[-1]
        if last.lower() in self.allowed or key.lower() in self.allowed:
            return False
        if last.lower() in self.extra or key.lower() in self.extra:
            return True
        words = _words(last)
        if any(w in _SECRET_WORDS for w in words):
            return True
        pairs = set(zip(words, words[1:], strict=False))
        if pairs & _SECRET_PAIRS:
            return True
        if "key" in words:
            i = words.index("key")
            if i > 0 and (words[i - 1], "key") in _NOT_SECRET_PAIRS:
                return False
            return True
        return False

    def tag(self, value: Any) -> str:
        digest = hmac.new(self._key, repr(value).encode("utf-8", "surrogatepass"), hashlib.sha256)
        return f"{MASK_PREFIX}{digest.hexdigest()[:6]}>"

    def mask_value(self, key: str, value: Any) -> tuple[Any, bool]:
        """Return ``(shown, masked)`` for a value under ``key``."""
        if value is None:
            return None, False
        if isinstance(value, str) and is_mask(value):   # masked already: masks never nest
            return value, True
        if self.is_secret_key(key):
            return self.tag(value), True
        if isinstance(value, str):
            redacted = redact_url(value, self)
            if redacted != value:
                return redacted, True
        return value, False

    def mask_tree(self, data: Any, key: str = "") -> Any:
        """A copy of nested dicts/lists with every secret value masked."""
        if isinstance(data, dict):
            return {k: self.mask_tree(v, str(k)) for k, v in data.items()}
        if isinstance(data, list):
            return [self.mask_tree(v, key) for v in data]
        shown, _ = (
            self.mask_value(key, data) if key else (redact_url(data, self) if isinstance(data, str) else data, False)
        )
        return shown

    def redact_text(self, text: str, values: Iterable[str]) -> str:
        """``text`` with every secret masked, by value and by shape (see ``redact``)."""
        return redact(text, self, values)


# --- masking free text ---------------------------------------------------------------------
#
# A text (a log line, an error, a commit message, a whole diff) is masked in passes, each
# leaving the masks of the passes before it alone, so masks never nest:
#   1. private keys in PEM blocks, whole;
#   2. every known secret value, wherever it stands (the longest first);
#   3. credentials by their shape: Authorization headers, URL passwords, a value assigned
#      to a secret name after any prefix (``WARNING:root:password=x``, ``"token": "x"``,
#      ``password='a b'``, ``?api_key=x&``), well-known token formats.

_MASK_ANY = re.compile(r"<secret:[0-9a-f]{6}>")
_PEM = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----(.*?)(?:-----END \1-----|\Z)", re.S)
_AUTH = re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)((?:(?:bearer|basic|token|digest|negotiate|"
                   r"aws4-hmac-sha256)\s+)?[^\s\"',;]+)")
# a scheme starts where no scheme character stands before it: tried once per word, not at every
# letter of a long word (which made a megabyte of letters take minutes)
_URL_PASSWORD_ANYWHERE = re.compile(r"(?<![a-zA-Z0-9+.\-])(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):"
                                    r"(?P<pw>[^@/\s]+)@")
_KEY_SEP = re.compile(r"""(?P<key>(?<![A-Za-z0-9_.\-])[A-Za-z_][A-Za-z0-9_.\-]*)"""
                      r"""(?P<sep>["']?[ \t]*[=:][ \t]*(?P<q>["']?))""")
_BARE_VALUE = re.compile(r"""[^\s"',;&<>()\[\]{}][^\s"',;&<>)\]}]*""")
_TOKENS = re.compile(r"""(?x)
      \b(?:AKIA|ASIA)[0-9A-Z]{16}\b                                # AWS access key ids
    | \beyJ[A-Za-z0-9_-]{6,}\.eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}  # JSON web tokens
    | \bgh[pousr]_[A-Za-z0-9]{30,}                                 # GitHub tokens
    | \bgithub_pat_[A-Za-z0-9_]{30,}
    | \bglpat-[A-Za-z0-9_-]{20,}                                   # GitLab
    | \bxox[abposr]-[A-Za-z0-9-]{10,}                              # Slack
    | \b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}                   # Stripe secret and restricted keys
    | \bwhsec_[A-Za-z0-9]{16,}                                     # Stripe webhook secrets
    | \bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}                  # SendGrid
    | \bAIza[0-9A-Za-z_-]{35}                                      # Google API keys
    | \bnpm_[A-Za-z0-9]{36}\b                                      # npm
""")
_VALUE_PATTERNS: dict[frozenset[str], re.Pattern[str] | None] = {}
# a text holding none of these has no secret by shape (every pattern above needs one): most of
# a diff's values, which are then left as they are without running each pass
_MAYBE_SHAPE = re.compile(r"[:=]|-----BEGIN|AKIA|ASIA|eyJ|gh[pousr]_|github_pat_|glpat-|xox[abposr]-"
                          r"|[sr]k_(?:live|test)_|whsec_|SG\.|AIza|npm_")


def redact(text: str, policy: SecretPolicy, values: Iterable[str] = ()) -> str:
    known = _values_pattern(values)
    if not _MAYBE_SHAPE.search(text) and (known is None or not known.search(text)):
        return text
    return _redact_all(text, policy, known)


def _redact_all(text: str, policy: SecretPolicy, known: re.Pattern[str] | None) -> str:
    """Every pass over ``text`` (``redact`` without its shortcut)."""
    text = _PEM.sub(lambda m: m[0] if _MASK_ANY.fullmatch(m[2]) else
                    f"-----BEGIN {m[1]}-----{policy.tag(m[0])}-----END {m[1]}-----", text)
    return "".join(part if _MASK_ANY.fullmatch(part) else _redact_part(part, policy, known)
                   for part in _split_masks(text))


def _redact_part(text: str, policy: SecretPolicy, known: re.Pattern[str] | None) -> str:
    if known is not None:
        text = known.sub(lambda m: policy.tag(m[0]), text)
    parts = _split_masks(text)
    return "".join(p if _MASK_ANY.fullmatch(p) else _shapes(p, policy) for p in parts)


def _shapes(text: str, policy: SecretPolicy) -> str:
    spans: list[tuple[int, int]] = []
    for m in _AUTH.finditer(text):
        spans.append(m.span(2))
    for m in _URL_PASSWORD_ANYWHERE.finditer(text):
        spans.append(m.span("pw"))
    for m in _KEY_SEP.finditer(text):
        if not policy.is_secret_key(m["key"]):
            continue
        start = m.end()
        if m["q"]:
            end = text.find(m["q"], start)
            end = end if 0 <= end - start <= 4096 else -1
        else:
            v = _BARE_VALUE.match(text, start)
            end = v.end() if v else -1
        if end > start:
            spans.append((start, end))
    for m in _TOKENS.finditer(text):
        spans.append(m.span())
    if not spans:
        return text
    out, last = [], 0
    for start, end in _merged(spans):
        out.append(text[last:start])
        out.append(policy.tag(text[start:end]))
        last = end
    out.append(text[last:])
    return "".join(out)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _split_masks(text: str) -> list[str]:
    """``text`` cut into the masks it holds and what stands between them."""
    out, last = [], 0
    for m in _MASK_ANY.finditer(text):
        out += [text[last:m.start()], m[0]]
        last = m.end()
    out.append(text[last:])
    return [p for p in out if p]


def _values_pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern for every known value of 3 characters or more, the longest first."""
    key = frozenset(v for v in values if isinstance(v, str) and len(v) >= 3 and not _MASK_ANY.search(v))
    if key not in _VALUE_PATTERNS:
        if len(_VALUE_PATTERNS) > 64:
            _VALUE_PATTERNS.clear()
        ordered = sorted(key, key=len, reverse=True)
        _VALUE_PATTERNS[key] = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None
    return _VALUE_PATTERNS[key]


def redact_url(value: str, policy: SecretPolicy) -> str:
    m = _URL_PASSWORD.match(value)
    if not m:
        return value
    return f"{m['scheme']}{m['user']}:{policy.tag(m['pw'])}@" + value[m.end() :]


def _default_key() -> bytes:
    return os.environ.get("REPRO_SECRET_KEY", "repro-tui").encode()


def secret_values(env: dict[str, Any], policy: SecretPolicy) -> list[str]:
    """The raw secret values of a flat mapping (for redacting logs and messages)."""
    return [value for _where, value in tree_values(env, policy)]


def tree_values(data: Any, policy: SecretPolicy, where: str = "", secret: bool = False) -> list[tuple[str, str]]:
    """Every secret value in nested settings (a parsed config file, an environment), with
    the key path it stands under: each value under a secret name (every item of a list
    under one, every line of a multi-line one), and every URL password and private key in
    any text."""
    out: list[tuple[str, str]] = []
    if isinstance(data, dict):
        for k, v in data.items():
            out += tree_values(v, policy, f"{where}.{k}" if where else str(k), secret or policy.is_secret_key(str(k)))
    elif isinstance(data, list | tuple):
        for v in data:
            out += tree_values(v, policy, where, secret)
    elif data is not None and not isinstance(data, bool):
        text = str(data)
        if secret:
            out.append((where, text))
            out += [(where, line.strip()) for line in text.splitlines() if len(line.strip()) >= 8]
        for m in _URL_PASSWORD_ANYWHERE.finditer(text):
            out.append((where, m["pw"]))
            if "%" in m["pw"]:   # an app reads the URL decoded, and may print it so: p%40ss is p@ss
                out.append((where, unquote(m["pw"])))
        for m in _PEM.finditer(text):
            out += [(where, line.strip()) for line in m[2].splitlines() if len(line.strip()) >= 16]
    return out
