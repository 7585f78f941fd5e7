"""A PostgreSQL server of the test image, for the tests of the PostgreSQL data differ.

Two databases in it stand for prod's and a clone's: the differ compares two databases
the same way whether they are in one server or two (a snapshot of a clone is a database
beside the clone's own). The clone's database is made from prod's as the store makes it
(``CREATE DATABASE ... TEMPLATE``), so it starts as an exact copy."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.conftest_docker import PG_IMAGE
from workbench.diff.postgres_rows import Side, diff_databases
from workbench.docker_engine import Engine
from workbench.psql import PgServer, qi

# a collation under which 'abc' = 'ABC' (ICU, which the test image's PostgreSQL is built with)
CI = "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);"


@contextmanager
def pg_server(docker_client: Any) -> Iterator[PgServer]:
    """A running server, removed afterwards with its volume."""
    container = docker_client.containers.run(PG_IMAGE, name=f"repro-test-pgdiff-{uuid.uuid4().hex[:8]}",
                                             detach=True, labels={"repro.test": "1"})
    engine = Engine("test-pgdiff")
    server = PgServer(engine, container, "postgres")
    try:
        for _ in range(300):
            if container.exec_run(["pg_isready", "-q", "-h", "/var/run/postgresql"]).exit_code == 0:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(container.logs().decode()[-2000:])
        yield server
    finally:
        server.close()
        engine.close()
        container.remove(force=True, v=True)


def copy_database(server: PgServer, source: str, name: str) -> None:
    """``name``, made anew as a copy of ``source`` (no session may be open on it)."""
    server.close()
    server.psql(f"DROP DATABASE IF EXISTS {qi(name)}")
    server.psql(f"CREATE DATABASE {qi(name)} TEMPLATE {qi(source)}")


def pair(server: PgServer, name: str, setup: str, change: str) -> tuple[Side, Side]:
    """Prod's database made by ``setup``, and a clone of it changed by ``change``."""
    server.psql(f"DROP DATABASE IF EXISTS {qi(name + '_prod')}")
    server.psql(f"CREATE DATABASE {qi(name + '_prod')}")
    server.psql(setup, name + "_prod")
    copy_database(server, name + "_prod", name + "_clone")
    if change:
        server.psql(change, name + "_clone")
    return Side(server, name + "_prod"), Side(server, name + "_clone")


def run(left: Side, right: Side, **kwargs: Any) -> tuple[list[Any], dict[str, Any]]:
    """The differ's changes, and its groups by name."""
    changes, groups = diff_databases("db", left, right, **kwargs)
    return changes, {g.name: g for g in groups}
