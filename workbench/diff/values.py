"""How a value is shown in a change: secrets masked, BLOBs abbreviated, text intact.

Every value goes through a ``Shower`` before it enters a ``Change``, so no output made
from a change can show a secret or megabytes of a BLOB."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from workbench.secrets import SecretPolicy


class BlobText(str):
    """A BLOB abbreviated to text (``x'0a1b…' (N bytes)``); JSON sees a plain string."""


def abbreviate_blob(data: bytes, shown: int = 16) -> BlobText:
    head = data[:shown].hex()
    return BlobText(f"x'{head}{'…' if len(data) > shown else ''}' ({len(data)} bytes)")


class Shower:
    """Shows values: a value under a secret name is masked whole; every text is masked by
    value and by shape through ``redact`` (the workspace's redactor), or by shape alone."""

    def __init__(self, policy: SecretPolicy | None = None, redact: Callable[[str], str] | None = None) -> None:
        self.policy = policy or SecretPolicy()
        self.redact = redact or (lambda text: self.policy.redact_text(text, ()))
        # identifies the masking, for cache keys (two policies with different keys mask differently)
        self.key = (tuple(sorted(self.policy.extra)), tuple(sorted(self.policy.allowed)), self.policy.tag(""))

    def value(self, name: str, value: Any, secret: bool = False) -> tuple[Any, bool]:
        """``(shown, masked)`` for a value under ``name`` (a column, a key, an env variable)."""
        if value is None:
            return None, False
        if secret or self.policy.is_secret_key(name):
            return self.policy.tag(value), True
        if isinstance(value, (bytes, bytearray, memoryview)):
            return abbreviate_blob(bytes(value)), False
        if isinstance(value, float) and not math.isfinite(value):
            return repr(value), False
        if isinstance(value, str):
            shown = self.redact(value)
            return shown, shown != value
        return value, False

    def row(self, columns: list[str], values: Any) -> tuple[dict[str, Any], bool]:
        out, masked = {}, False
        for c, v in zip(columns, values, strict=False):
            out[c], m = self.value(c, v)
            masked = masked or m
        return out, masked

    def tree(self, value: Any, name: str = "", secret: bool = False) -> tuple[Any, bool]:
        """A nested value (config) with every secret leaf masked; under a secret key, all of it."""
        if secret or (name and self.policy.is_secret_key(name)):
            return (None, False) if value is None else (self.policy.tag(value), True)
        if isinstance(value, dict):
            out, masked = {}, False
            for k, v in value.items():
                out[k], m = self.tree(v, str(k))
                masked = masked or m
            return out, masked
        if isinstance(value, list):
            items, masked = [], False
            for v in value:
                shown, m = self.tree(v, name)
                items.append(shown)
                masked = masked or m
            return items, masked
        return self.value(name, value)


def key_text(value: Any) -> str:
    """A key value as it reads inside ``table[...]``: numbers bare, text in double quotes."""
    if value is None:
        return "NULL"
    if isinstance(value, BlobText) or isinstance(value, bool) or isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
