"""Stores copy, snapshot, restore, fingerprint and scrub data."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.spec import Spec, StoreSpec
    from workbench.stores.base import Store


def make_store(spec: Spec, store: StoreSpec, repro_dir, backend=None) -> Store:
    if store.type == "sqlite":
        from workbench.stores.sqlite import SqliteStore

        return SqliteStore(spec, store, repro_dir)
    if store.type == "files":
        from workbench.stores.files import FilesStore

        return FilesStore(spec, store, repro_dir)
    if store.type == "postgres":
        from workbench.stores.postgres import PostgresStore

        return PostgresStore(spec, store, repro_dir, backend)
    raise ValueError(store.type)
