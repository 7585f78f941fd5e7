"""How a PostgreSQL store is copied from prod: pg_basebackup run beside prod's server (a
helper in its network) straight into the clone's volume when a replication login over TCP
is allowed, else streamed from inside prod's container. Both give the same rows; prod is
only read."""

from __future__ import annotations

import textwrap
import time
import uuid

import pytest

from tests.conftest import git
from tests.conftest_docker import PG_IMAGE, psql_in

pytestmark = pytest.mark.docker


def _psql(container, sql: str, db: str = "shop") -> str:
    return psql_in(container, sql, db)


@pytest.fixture(scope="module")
def prod_db(docker_client):
    tag = "pc" + uuid.uuid4().hex[:6]
    labels = {"com.docker.compose.project": tag, "com.docker.compose.service": "db",
              "com.docker.compose.container-number": "1", "com.docker.compose.oneoff": "False"}
    db = docker_client.containers.run(PG_IMAGE, name=f"{tag}_db_1", detach=True, labels=labels,
                                      environment={"POSTGRES_PASSWORD": "pw-prod-copy"})
    try:
        for _ in range(300):
            if db.exec_run(["pg_isready", "-q", "-h", "/var/run/postgresql"]).exit_code == 0:
                break
            time.sleep(0.1)
        _psql(db, "CREATE ROLE app LOGIN PASSWORD 'app-pw' NOREPLICATION CREATEDB", "postgres")
        _psql(db, "CREATE DATABASE shop OWNER app", "postgres")
        _psql(db, "CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 5000) g; "
                  "ALTER TABLE orders OWNER TO app")
        yield tag, db
    finally:
        db.remove(force=True, v=True)


@pytest.mark.parametrize("user, password, direct", [("postgres", "", True), ("app", "app-pw", False)])
def test_a_fork_copies_prods_database_either_way(prod_db, tmp_path, user, password, direct):
    from workbench.workspace import Workspace

    tag, db = prod_db
    root = tmp_path / "ws"
    root.mkdir()
    extra = f", password: {password}" if password else ""
    (root / "repro.yaml").write_text(textwrap.dedent(f"""\
        name: copies
        backend: docker
        prod: {{branch: main, compose_project: {tag}}}
        stores:
          db: {{type: postgres, service: db, database: shop, user: {user}{extra}}}
        """))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "copies")
    db.reload()
    started = db.attrs["State"]["StartedAt"]
    said: list[str] = []
    ws = Workspace(root)
    try:
        ws.fork("prod", "b1", progress=said.append)
        streamed = any("no replication login over TCP" in s for s in said)
        assert streamed is not direct, said
        clone = ws.backend.engine.container(ws.backend.container_name("b1", "db"))
        assert _psql(clone, "SELECT count(*), md5(string_agg(note, '' ORDER BY id)) FROM orders") == \
            _psql(db, "SELECT count(*), md5(string_agg(note, '' ORDER BY id)) FROM orders")
        ws.destroy("b1", force=True)
    finally:
        ws.close()
    db.reload()
    assert db.status == "running" and db.attrs["State"]["StartedAt"] == started   # prod only read
