"""``repro-tui init``: a commented repro.yaml for a running compose project, written from
what the engine shows (containers labelled as docker-compose 1.29 labels them)."""

from __future__ import annotations

import time

import pytest

from tests.conftest import git, run_cli
from tests.conftest_docker import BUSYBOX_IMAGE, PG_IMAGE

pytestmark = pytest.mark.docker


def compose_labels(project: str, service: str, root) -> dict[str, str]:
    """The labels docker-compose 1.29 puts on a service's container."""
    return {"com.docker.compose.project": project, "com.docker.compose.service": service,
            "com.docker.compose.container-number": "1", "com.docker.compose.oneoff": "False",
            "com.docker.compose.version": "1.29.2", "com.docker.compose.config-hash": "0" * 64,
            "com.docker.compose.project.working_dir": str(root),
            "com.docker.compose.project.config_files": str(root / "docker-compose.yml")}


def _wait_pg(container) -> None:
    for _ in range(300):
        if container.exec_run(["pg_isready", "-q", "-h", "/var/run/postgresql"]).exit_code == 0:
            return
        time.sleep(0.1)
    raise AssertionError(container.logs().decode()[-2000:])


@pytest.fixture
def shop_project(tmp_path, docker_client, docker_tag, docker_cleanup):
    """A running compose project: PostgreSQL with a shop database, and a web app that mounts config/."""
    root = tmp_path / "shop"
    (root / "config").mkdir(parents=True)
    (root / "config" / "app.yaml").write_text("currency: EUR\n")
    (root / "docker-compose.yml").write_text("version: '3'\n")
    git(root, "init", "-q", "-b", "trunk")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "shop")
    vol = docker_client.volumes.create(f"{docker_tag}_pgdata")
    docker_cleanup.append(vol)
    db = docker_client.containers.run(PG_IMAGE, name=f"{docker_tag}_db_1", detach=True,
                                      environment={"POSTGRES_DB": "shop", "POSTGRES_PASSWORD": "pw-init-77"},
                                      volumes={vol.name: {"bind": "/var/lib/postgresql/data", "mode": "rw"}},
                                      labels=compose_labels(docker_tag, "db", root))
    docker_cleanup.append(db)
    web = docker_client.containers.run(BUSYBOX_IMAGE, ["httpd", "-f", "-p", "8080", "-h", "/www"],
                                       name=f"{docker_tag}_web_1", detach=True, init=True,
                                       environment={"SMTP_HOST": "smtp.example.com", "API_TOKEN": "tok-9"},
                                       volumes={str(root / "config"): {"bind": "/www", "mode": "ro"}},
                                       labels=compose_labels(docker_tag, "web", root))
    docker_cleanup.append(web)
    _wait_pg(db)
    code, out = db.exec_run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "shop", "-c",
                             "CREATE TABLE customers (id int PRIMARY KEY, full_name text, email text, phone text, "
                             "city text, total numeric); INSERT INTO customers VALUES (1, 'Ann', 'ann@mail.test', "
                             "'555', 'Oslo', 1.5)"], user="postgres")
    assert code == 0, out
    return root


def test_init_writes_a_repro_yaml_for_the_project_named(shop_project, docker_client, docker_tag, docker_cleanup):
    from workbench.backends.docker_init import choose
    from workbench.spec import load_spec
    from workbench.workspace import Workspace

    root = shop_project
    # a second running project: init without a name lists both and asks for one (exit 2)
    other = docker_client.containers.run(BUSYBOX_IMAGE, ["sleep", "600"], name=f"{docker_tag}x_cache_1",
                                         detach=True, init=True,
                                         labels=compose_labels(f"{docker_tag}x", "cache", root))
    docker_cleanup.append(other)
    r = run_cli("init", cwd=root)
    assert r.returncode == 2, r.stderr
    assert f"{docker_tag} (db, web)" in r.stderr and f"{docker_tag}x (cache)" in r.stderr
    assert "repro-tui init" in r.stderr and "Traceback" not in r.stderr
    assert not (root / "repro.yaml").exists()
    r = run_cli("init", "no-such-project", cwd=root)
    assert r.returncode == 1 and "no running compose project named 'no-such-project'" in r.stderr

    r = run_cli("init", docker_tag, cwd=root)
    assert r.returncode == 0, r.stderr
    text = (root / "repro.yaml").read_text()
    assert "pw-init-77" not in text and "tok-9" not in text        # passwords are never written
    spec = load_spec(root)
    assert (spec.backend, spec.compose_project, spec.prod_branch) == ("docker", docker_tag, "trunk")
    db = spec.stores["db"]
    assert (db.type, db.service, db.database, db.user) == ("postgres", "db", "shop", "postgres")
    assert spec.scrub == [] and spec.override_env == {}              # suggestions only, commented out
    assert "#   customers.email: email" in text and "#   customers.full_name: name" in text
    assert "#   customers.phone: phone" in text and "customers.total" not in text
    assert '# SMTP_HOST: "127.0.0.1:1025"' in text
    assert spec.config_files == ["config/*"]

    # uncommented, the suggestions make a valid file whose rules match the real schema
    live = text.replace("    # db:", "    db:").replace("    #   customers.", "      customers.")
    live = live.replace('      # SMTP_HOST: "127.0.0.1:1025"', '      SMTP_HOST: "127.0.0.1:1025"')
    (root / "repro.yaml").write_text(live)
    ws = Workspace(root)
    try:
        assert {r.target for r in ws.spec.scrub} >= {"customers.email", "customers.phone", "customers.full_name"}
        assert ws.spec.override_env == {"SMTP_HOST": "127.0.0.1:1025"}
        ws.stores["db"].check(ws.spec.scrub_rules("db"))
        assert {"db", "web"} <= set(ws.status("prod").services)
    finally:
        ws.close()

    # never overwritten
    r = run_cli("init", docker_tag, cwd=root)
    assert r.returncode == 1 and "exists already" in r.stderr
    assert (root / "repro.yaml").read_text() == live

    # the only running project is taken without being named (the choice itself, on plain data)
    assert choose({docker_tag: [other]}, None) == docker_tag
