"""What the diff is handed: the typed source of everything it reads besides the two sides.

The diff never reads a workspace. Whoever asks for a diff (the workspace's environments)
builds one ``DiffSource``: the config files to compare, each store's kind and scrubbed
columns (and, for a store in a server, how to reach one side's database), the secret
policy, and how to describe running services. Tests build one from a spec in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.model import Side
    from workbench.secrets import SecretPolicy
    from workbench.spec import Spec

Describe = Callable[["Side"], "dict[str, dict[str, Any]] | None"]


@dataclass
class StoreView:
    """One store as the diff sees it."""

    kind: str                                                 # sqlite | files | postgres
    scrubbed: dict[str, set[str]] = field(default_factory=dict)   # lower-case table -> lower-case columns
    # a store in a server: (server, database) of ENV or ENV@SNAPSHOT, and a cheap change token of a location
    endpoint: Callable[[str, str | None], tuple[Any, str]] | None = None
    fingerprint: Callable[[str], str] | None = None


@dataclass
class DiffSource:
    config_files: list[str]
    stores: dict[str, StoreView]
    secrets: SecretPolicy | None = None
    redact: Callable[[str], str] | None = None   # the workspace's redactor: masks known values too
    describe: Describe | None = None        # the backend's normalised settings per service (docker)
    resolve: Callable[[str], Side] | None = None   # a ref's side as it is now (the watch re-reads runtime facts)

    @classmethod
    def of_spec(cls, spec: Spec, secrets: SecretPolicy | None = None, **more: Any) -> DiffSource:
        """The source of a spec alone: its config files, its stores and their scrub rules."""
        stores = {name: StoreView(st.type, scrubbed_columns(spec, name)) for name, st in spec.stores.items()}
        return cls(list(spec.config_files or []), stores, secrets, **more)

    def kind(self, store: str) -> str:
        view = self.stores.get(store)
        return view.kind if view else "unknown"


def scrubbed_columns(spec: Spec, store: str) -> dict[str, set[str]]:
    """Lower-case table -> lower-case columns the spec scrubs in ``store``."""
    out: dict[str, set[str]] = {}
    for rule in spec.scrub_rules(store):
        out.setdefault(rule.table.split(".")[-1].lower(), set()).add(rule.column.lower())
    return out
