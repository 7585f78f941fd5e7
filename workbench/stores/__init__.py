"""Stores copy, snapshot, restore, fingerprint and scrub data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.fence import Fence
    from workbench.spec import Spec, StoreSpec
    from workbench.stores.base import Store


def make_store(spec: Spec, store: StoreSpec, repro_dir, host: Any = None, fence: Fence | None = None) -> Store:
    """The store of ``store``'s type; ``host`` is where a server store's databases run
    (a ``workbench.psql.PgHost``: the Docker backend)."""
    if store.type == "sqlite":
        from workbench.stores.sqlite import SqliteStore

        return SqliteStore(spec, store, repro_dir, fence)
    if store.type == "files":
        from workbench.stores.files import FilesStore

        return FilesStore(spec, store, repro_dir, fence)
    if store.type == "postgres":
        from workbench.stores.postgres import PostgresStore

        return PostgresStore(spec, store, repro_dir, host, fence)
    raise ValueError(store.type)
