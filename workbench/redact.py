"""The redactor: every byte that leaves repro-tui passes through one object.

The terminal and ``--json`` (through the CLI's writer), error messages, the journal's
messages, log lines, the diff of a promote and the commit messages it writes, and every
text the screen shows (through its gateway) are masked here. The policy says which
*names* are secret (``workbench.secrets``); the redactor also knows the secret *values*
of the workspace (prod's and each clone's declared settings, store passwords), so a
secret is masked wherever it appears, under any key or none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from workbench.secrets import SecretPolicy

Values = Callable[[str | None], "dict[str, str]"]   # secret value -> where it was found

_DIFF_LINE = re.compile(r"^([+\- ])(\s*[\"']?)([A-Za-z0-9_.\-]+)([\"']?\s*[:=]\s*)(.+)$")


class Redactor:
    def __init__(self, policy: SecretPolicy, values: Values | None = None) -> None:
        self.policy = policy
        self._values = values or (lambda _env: {})

    def values(self, env: str | None = None) -> list[str]:
        """The secret values known for the workspace (a changed secret may be declared only in
        a clone's own files: every environment's are known)."""
        return list(self._values(env))

    def found_in(self, text: str, env: str | None = None) -> list[str]:
        """Where each known secret value that ``text`` holds was declared (``config/app.yaml:
        upstream.api_key``), and "a credential by its shape" for one recognised by its form."""
        known = self._values(env)
        names = sorted({where for value, where in known.items() if len(value) >= 3 and value in text})
        if not names and self.policy.redact_text(text, ()) != text:
            names = ["a credential (recognised by its shape: a password, token or key after its name, a URL "
                     "password, a known token format)"]
        return names

    def text(self, text: str, env: str | None = None) -> str:
        """Every known secret value, every value assigned to a secret name and every URL
        password in ``text`` masked."""
        return self.policy.redact_text(text, self.values(env))

    def lines(self, lines: Iterable[str], env: str | None = None) -> Iterator[str]:
        values = self.values(env)
        for line in lines:
            yield self.policy.redact_text(line, values)

    def tree(self, data: Any, env: str | None = None) -> Any:
        """A copy of a JSON document of repro-tui's own (lists, dicts of facts) with every
        string value masked by value and by shape; keys and numbers are left as they are."""
        values = self.values(env)
        return _map_strings(data, lambda s: self.policy.redact_text(s, values))

    def settings(self, data: Any, env: str | None = None) -> Any:
        """A copy of settings (names -> values, as in a service's environment): a value under a
        secret name is masked whole, and every string by value and by shape."""
        return self.tree(self.policy.mask_tree(data), env)

    def diff_text(self, text: str, env: str | None = None) -> str:
        """A unified diff (what a promote would commit): a changed line that assigns a secret
        name shows a mask in place of its value; known values are masked anywhere."""
        values = self.values(env)
        out = []
        for line in text.splitlines():
            m = _DIFF_LINE.match(line)
            if m and not line.startswith(("+++", "---")) and self.policy.is_secret_key(m.group(3)):
                line = f"{m.group(1)}{m.group(2)}{m.group(3)}{m.group(4)}{self.policy.tag(m.group(5).strip())}"
            out.append(self.policy.redact_text(line, values))
        return "\n".join(out)


def _map_strings(data: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(data, str):
        return fn(data)
    if isinstance(data, dict):
        return {k: _map_strings(v, fn) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_map_strings(v, fn) for v in data]
    return data
