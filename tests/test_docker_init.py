"""``repro-tui init``: a commented repro.yaml for a running compose project, written from
what the engine shows (containers labelled as docker-compose 1.29 labels them)."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import git, run_cli
from tests.conftest_docker import BUSYBOX_IMAGE, PG_IMAGE
from workbench.spec import load_spec

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
    # the safe defaults and the personal columns are written ACTIVE, each line saying how to turn it off
    assert spec.override_env == {"SMTP_HOST": "{mail.host}", "SMTP_PORT": "{mail.port}"}
    assert {(r.table, r.column, r.strategy) for r in spec.scrub} == {
        ("customers", "full_name", "name"), ("customers", "email", "email"), ("customers", "phone", "phone")}
    assert "customers.total" not in text and "write 'keep' as its strategy" in text
    assert "write that value here instead of the line" in text
    assert spec.config_files == ["config/*"]
    live = text
    ws = Workspace(root)
    try:   # the rules match the real schema
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


def test_init_picks_the_apps_database_and_a_fork_of_what_it_wrote_cannot_mail_a_real_person(
        tmp_path, docker_client, docker_tag, docker_cleanup):
    """Done when: a new user runs init, commits, forks without editing anything, and gets a
    clone that cannot mail a real person and shows what it would have sent."""
    from tests.test_docker_egress import SEND, send_and_read

    root = tmp_path / "shop"
    (root / "www").mkdir(parents=True)
    (root / "www" / "send.sh").write_text(SEND)
    (root / "www" / "send.sh").chmod(0o755)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "shop")
    net = docker_client.networks.create(f"{docker_tag}_default")
    docker_cleanup.append(net)
    vol = docker_client.volumes.create(f"{docker_tag}_pgdata")
    docker_cleanup.append(vol)
    db = docker_client.containers.run(PG_IMAGE, name=f"{docker_tag}_db_1", detach=True, network=net.name,
                                      environment={"POSTGRES_PASSWORD": "pw-init-88"},   # no POSTGRES_DB
                                      volumes={vol.name: {"bind": "/var/lib/postgresql/data", "mode": "rw"}},
                                      labels=compose_labels(docker_tag, "db", root))
    docker_cleanup.append(db)
    web = docker_client.containers.run(
        BUSYBOX_IMAGE, ["httpd", "-f", "-p", "8080", "-h", "/www"], name=f"{docker_tag}_web_1", detach=True,
        init=True, network=net.name, volumes={str(root / "www"): {"bind": "/www", "mode": "ro"}},
        environment={"DATABASE_URL": "postgres://postgres:pw-init-88@db:5432/shop",
                     "SMTP_HOST": "smtp.realmail.example", "SMTP_PORT": "25", "STRIPE_SECRET_KEY": "sk_live_51Zq"},
        labels=compose_labels(docker_tag, "web", root))
    docker_cleanup.append(web)
    _wait_pg(db)
    people = [("Ann Berg", "ann.berg@mail.test", "+47 22 11 00 01", "10.1.0.7"),
              ("Bob Stone", "bob.stone@mail.test", "+47 22 11 00 02", "10.1.0.8"),
              ("Cleo Marsh", "cleo.marsh@mail.test", "+47 22 11 00 03", "10.1.0.9"),
              ("Dan Holt", "dan.holt@mail.test", "+47 22 11 00 04", "10.1.0.10")]
    rows = ", ".join(f"({i}, '{n}', '{e}', '{p}', '{ip}', 'likes {i} things', 'Oslo')"
                     for i, (n, e, p, ip) in enumerate(people, 1))
    for sql, dbname in (("CREATE DATABASE shop", "postgres"), ("CREATE DATABASE reports", "postgres"),
                        ("CREATE TABLE customers (id int PRIMARY KEY, full_name text, contact text, mobile text, "
                         "seen_from text NOT NULL, notes text, city text); "
                         f"INSERT INTO customers VALUES {rows}", "shop"),
                        ("CREATE TABLE daily (day date PRIMARY KEY, amount numeric, owner_email text)", "reports")):
        code, out = db.exec_run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dbname, "-c", sql],
                                user="postgres")
        assert code == 0, out

    r = run_cli("init", docker_tag, cwd=root)
    assert r.returncode == 0, r.stderr
    assert "store db: PostgreSQL database shop, chosen by web.DATABASE_URL; 4 column(s) scrubbed" in r.stdout
    text = (root / "repro.yaml").read_text()
    for original in ("ann.berg", "Ann Berg", "22 11 00", "10.1.0.7", "pw-init-88", "sk_live_51Zq"):
        assert original not in text and original not in r.stdout        # the sample is never shown
    spec = load_spec(root)
    assert spec.stores["db"].database == "shop"
    assert {(r.table, r.column, r.strategy) for r in spec.scrub} == {
        ("customers", "full_name", "name"), ("customers", "contact", "email"), ("customers", "mobile", "phone"),
        ("customers", "seen_from", "hash")}                   # an IP in a NOT NULL column: a keyed hash
    assert "# its values look like an email" in text and "# its column name" in text
    assert spec.override_env["SMTP_HOST"] == "{mail.host}" and spec.override_env["STRIPE_SECRET_KEY"] == \
        "disabled-by-repro-tui"

    # committed as written, then forked: the clone's app mails into its sink, scrubbed data only
    git(root, "add", "repro.yaml")
    git(root, "commit", "-q", "-m", "repro.yaml as init wrote it")
    try:
        r = run_cli("fork", "prod", "b1", cwd=root, timeout=300)
        assert r.returncode == 0, r.stderr
        status = json.loads(run_cli("status", "b1", "--json", cwd=root).stdout)
        clone_web = docker_client.containers.get(status["services"]["web"]["container"])
        mails = send_and_read(clone_web, root)
        assert [m["to"] for m in mails] == [["ann.customer@realmail.test"]]
        clone_db = docker_client.containers.get(status["services"]["db"]["container"])
        code, out = clone_db.exec_run(["psql", "-X", "-A", "-t", "-d", "shop", "-c",
                                       "SELECT string_agg(full_name || contact || mobile || seen_from, ',') "
                                       "FROM customers"], user="postgres")
        assert code == 0 and out.strip() and not any(p[1].encode() in out or p[0].encode() in out for p in people)

        # a store on the maintenance database is refused at fork, saying what to do
        (root / "repro.yaml").write_text(text.replace("database: shop", "database: postgres"))
        r = run_cli("fork", "prod", "b2", cwd=root)
        assert r.returncode == 1 and "maintenance database" in r.stderr and "CREATE DATABASE" in r.stderr
    finally:
        (root / "repro.yaml").write_text(text)
        run_cli("destroy", "b1", "--yes", cwd=root, timeout=300)
