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

    def is_secret_key(self, key: str) -> bool:
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
        """Replace every occurrence of known secret values in free text (logs, errors), every
        value assigned to a secret name (``DB_PASSWORD=...``, ``"token": "..."``: a log may hold
        values that are no longer declared anywhere) and every password in a URL."""
        for v in sorted({v for v in values if v and len(v) >= 3}, key=len, reverse=True):
            text = text.replace(v, self.tag(v))
        text = _ASSIGNMENT.sub(self._assignment, text)
        return _URL_PASSWORD_ANYWHERE.sub(lambda m: f"{m['scheme']}{m['user']}:{self.tag(m['pw'])}@", text)

    def _assignment(self, m: re.Match[str]) -> str:
        if m["value"].startswith(MASK_PREFIX) or not self.is_secret_key(m["key"]):
            return m.group(0)
        if m.start() > 0 and _MASK.match(m.string, m.start() - 1):   # a mask itself: masks never nest
            return m.group(0)
        return f"{m['key']}{m['sep']}{self.tag(m['value'])}"


_ASSIGNMENT = re.compile(r"""(?P<key>\b[A-Za-z_][A-Za-z0-9_.\-]*)(?P<sep>["']?[ \t]*[=:][ \t]*["']?)"""
                         r"""(?P<value>[^\s"',;&]+)""")
_URL_PASSWORD_ANYWHERE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")


def redact_url(value: str, policy: SecretPolicy) -> str:
    m = _URL_PASSWORD.match(value)
    if not m:
        return value
    return f"{m['scheme']}{m['user']}:{policy.tag(m['pw'])}@" + value[m.end() :]


def _default_key() -> bytes:
    return os.environ.get("REPRO_SECRET_KEY", "repro-tui").encode()


def secret_values(env: dict[str, Any], policy: SecretPolicy) -> list[str]:
    """The raw secret values of a flat mapping (for redacting logs and messages)."""
    out = []
    for k, v in env.items():
        if isinstance(v, str):
            if policy.is_secret_key(k):
                out.append(v)
            m = _URL_PASSWORD_ANYWHERE.search(v)
            if m:
                out.append(m["pw"])
    return out
