"""The docker backend and the PostgreSQL store on a real engine: a compose-like prod stack
(an app container and PostgreSQL loaded with Chinook) forked, scrubbed, changed, diffed,
snapshotted, reset, promoted and destroyed. prod is checked unchanged at the end."""

from __future__ import annotations

import io
import json
import re
import tarfile
import textwrap
import time
import urllib.request

import pytest

from tests.conftest import DATA, git, run_cli
from tests.conftest_docker import BUSYBOX_IMAGE, PG_IMAGE, psql_in, volume_bytes

pytestmark = pytest.mark.docker


def _compose_labels(project: str, service: str) -> dict[str, str]:
    """The labels docker-compose 1.29 puts on a service's container."""
    return {"com.docker.compose.project": project, "com.docker.compose.service": service,
            "com.docker.compose.container-number": "1", "com.docker.compose.oneoff": "False",
            "com.docker.compose.version": "1.29.2", "shop.team": "music"}


def _psql(container, sql: str, db: str = "chinook") -> str:
    return psql_in(container, sql, db)


def _wait_pg(container) -> None:
    for _ in range(200):
        if container.exec_run(["pg_isready", "-q", "-h", "/var/run/postgresql"]).exit_code == 0:
            return
        time.sleep(0.1)
    raise AssertionError(container.logs().decode()[-2000:])


PROD_SUM = ("SELECT sum(hashtext(t::text)::bigint) FROM (SELECT * FROM customer UNION ALL SELECT * FROM customer) t")


@pytest.fixture(scope="module")
def prod_stack(docker_client, tmp_path_factory):
    """prod: a compose project of a PostgreSQL with Chinook and a busybox httpd app."""
    import uuid

    tag = "t" + uuid.uuid4().hex[:8]
    root = tmp_path_factory.mktemp("stack") / "music"
    (root / "config").mkdir(parents=True)
    (root / "config" / "app.yaml").write_text("feature:\n  rounding: floor\n")
    made = []
    vol = docker_client.volumes.create(f"{tag}_dbdata")
    made.append(vol)
    net = docker_client.networks.create(f"{tag}_default", labels={"com.docker.compose.project": tag})
    made.append(net)
    db = docker_client.containers.run(PG_IMAGE, name=f"{tag}_db_1", detach=True, network=net.name,
                                      volumes={vol.name: {"bind": "/var/lib/postgresql/data", "mode": "rw"}},
                                      environment={"POSTGRES_PASSWORD": "pw-prod-123"},
                                      labels=_compose_labels(tag, "db"))
    made.append(db)
    app = docker_client.containers.run(
        BUSYBOX_IMAGE, ["httpd", "-f", "-p", "8080", "-h", "/www"], name=f"{tag}_app_1", detach=True,
        network=net.name, init=True, ports={"8080/tcp": ("127.0.0.1", None)},
        volumes={str(root / "config"): {"bind": "/www", "mode": "ro"}},
        environment={"SMTP_HOST": "smtp.example.com", "API_TOKEN": "tok-live-9f8e7d",
                     "DATABASE_URL": "postgresql://postgres:pw-prod-123@db/chinook"},
        labels=_compose_labels(tag, "app"))
    made.append(app)
    _wait_pg(db)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(str(DATA / "Chinook_PostgreSql.sql"), arcname="chinook.sql")
    db.put_archive("/tmp", buf.getvalue())
    code, out = db.exec_run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-f", "/tmp/chinook.sql"],
                            user="postgres")
    assert code == 0, out.decode()[-2000:]
    (root / "repro.yaml").write_text(textwrap.dedent(f"""\
        name: music
        backend: docker
        prod: {{branch: main, compose_project: {tag}}}
        stores:
          db: {{type: postgres, service: db, database: chinook, user: postgres}}
        clone:
          overrides:
            env: {{SMTP_HOST: "127.0.0.1:1025"}}
          scrub:
            db:
              customer.email: email
              customer.phone: phone
              customer.fax: null
              employee.email: email
              employee.phone: phone
        config_files: [config/*.yaml]
        """))
    (root / ".gitignore").write_text(".repro/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "music stack")
    yield {"tag": tag, "root": root, "db": db, "app": app}
    for obj in reversed(made):
        try:
            obj.remove(force=True, v=True) if obj.__class__.__name__ == "Container" else obj.remove()
        except Exception:  # noqa: BLE001
            pass


def test_fork_scrub_diff_snapshot_reset_promote_destroy(prod_stack, docker_client, monkeypatch):
    from workbench.diff.postgres_rows import Side, diff_databases
    from workbench.workspace import Workspace

    root, db = prod_stack["root"], prod_stack["db"]
    db.reload()
    prod_started = db.attrs["State"]["StartedAt"]
    prod_before = _psql(db, "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM customer t")
    originals = _psql(db, "SELECT string_agg(email || E'\\n' || coalesce(phone, ''), E'\\n') FROM (SELECT email, "
                          "phone FROM customer UNION ALL SELECT email, phone FROM employee) t").split("\n")
    originals = [v for v in originals if len(v) >= 6]
    assert len(originals) > 100

    volumes_before = {v.name for v in docker_client.volumes.list()}
    ws = Workspace(root)
    try:
        t0 = time.perf_counter()
        ws.fork("prod", "b1")
        fork_seconds = time.perf_counter() - t0
        be = ws.backend
        status = ws.status("b1")
        assert {s["state"] for s in status.services.values()} == {"running"}, status.services
        store = ws.stores["db"]
        clone_srv, clone_db = store.endpoint("b1")

        # scrubbed: no original e-mail in the clone's database, deterministic fakes instead
        emails = clone_srv.query("SELECT email FROM customer ORDER BY customer_id", "chinook")
        assert all(r["email"].endswith("@example.invalid") for r in emails)

        # the clone's services: labels, own network, no compose labels, ports on 127.0.0.1, overrides
        cs = be.engine.containers("b1", role="service")
        assert {c.labels["repro.service"] for c in cs} == {"db", "app"}
        for c in cs:
            assert not any(k.startswith("com.docker.compose.") for k in c.labels)
            assert c.labels["repro.workspace"] == ws.id and c.labels["shop.team"] == "music"
            assert list(c.attrs["NetworkSettings"]["Networks"]) == [be.network_name("b1")]
        clone_app = be.engine.container(be.container_name("b1", "app"))
        env = dict(e.split("=", 1) for e in clone_app.attrs["Config"]["Env"])
        assert env["SMTP_HOST"] == "127.0.0.1:1025" and env["API_TOKEN"] == "tok-live-9f8e7d"
        port = ws.context("b1").ports["app"]
        binding = clone_app.attrs["HostConfig"]["PortBindings"]["8080/tcp"][0]
        assert binding == {"HostIp": "127.0.0.1", "HostPort": str(port)}
        # its network is internal: the engine publishes nothing, the clone's edge forwards the port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/app.yaml", timeout=5) as r:
            assert b"rounding" in r.read()
        # the app finds the database by its service name on the clone's network
        code, _ = clone_app.exec_run(["sh", "-c", "nc -w 2 db 5432 </dev/null"])
        assert code == 0

        # the services diff data: a fresh clone differs only by name, network, ports and overrides
        d_prod, d_clone = be.describe(ws.context("prod")), be.describe(ws.context("b1"))
        assert d_prod["app"]["env"]["API_TOKEN"].startswith("<secret:")
        for svc in ("app", "db"):
            for k in ("image", "image_id", "command", "entrypoint", "mounts", "healthcheck"):
                assert d_prod[svc][k] == d_clone[svc][k], (svc, k)
        assert {k for k in d_prod["app"]["env"] if d_prod["app"]["env"][k] != d_clone["app"]["env"].get(k)} == \
            {"SMTP_HOST"}

        # the whole diff of a fresh clone: nothing unexpected (per-clone keys and overrides have intents)
        report = ws.diff("prod", "b1")
        fresh = ws.diff("prod", "b1", only_unexpected=True)
        assert fresh.changes() == [], [c.as_dict() for c in fresh.changes()]
        paths = [c.path for c in report.services]
        assert len(paths) == len(set(paths)), sorted(paths)   # each service compared once
        assert sorted(g.name for g in report.groups if g.section == "services") == ["app", "db"]
        assert {c.path for c in report.services if c.intent == "override"} >= {
            "services.app.container.env.SMTP_HOST", "services.app.container.ports", "services.app.container.name",
            "services.db.container.networks"}
        assert sorted(c.path for c in report.data if c.intent == "scrub")[:2] == ["db.customer.email",
                                                                                  "db.customer.fax"]
        assert "tok-live-9f8e7d" not in repr(report.to_json()) and "pw-prod-123" not in repr(report.to_json())
        assert sorted(ws.backend.service_names(ws.context("b1"))) == ["app", "db"]
        assert any("database system is ready" in line for line in ws.logs("b1", "db"))

        # change rows in the clone: the diff shows exactly them (and one scrub entry per column)
        clone_c = be.engine.container(be.container_name("b1", "db"))
        _psql(clone_c, "UPDATE track SET unit_price = 9.99 WHERE track_id IN (1, 2, 3); "
                       "DELETE FROM invoice_line WHERE invoice_line_id = 7; "
                       "INSERT INTO genre (genre_id, name) VALUES (99, 'Chiptune')")
        prod_side, clone_side = Side(*store.endpoint("prod")), Side(*store.endpoint("b1"))
        scrubbed = {"customer": {"email", "phone", "fax"}, "employee": {"email", "phone"}}
        changes, _groups = diff_databases("db", prod_side, clone_side, scrubbed)
        rows = sorted((c.path, c.kind) for c in changes if c.intent is None)
        assert rows == [("db.genre[99]", "added"), ("db.invoice_line[7]", "removed"),
                        ("db.track[1].unit_price", "changed"), ("db.track[2].unit_price", "changed"),
                        ("db.track[3].unit_price", "changed")]
        assert sorted(c.path for c in changes if c.intent == "scrub") == [
            "db.customer.email", "db.customer.fax", "db.customer.phone", "db.employee.email", "db.employee.phone"]
        price = next(c for c in changes if c.path == "db.track[1].unit_price")
        assert (float(price.left), float(price.right)) == (0.99, 9.99)
        # ... and so does the real command line
        r = run_cli("diff", "prod", "b1", "--json", "--only-unexpected", cwd=root)
        assert r.returncode == 0, r.stderr
        shown = json.loads(r.stdout)
        assert sorted((c["path"], c["kind"]) for c in shown["data"]) == rows
        assert shown["config"] == [] and shown["services"] == []
        assert "tok-live-9f8e7d" not in r.stdout and "pw-prod-123" not in r.stdout

        # snapshot, then reset to the fork: the diff is clean again, and the reset is a rename
        ws.snapshot("b1", "s1")
        clone_c.reload()
        db_started = clone_c.attrs["State"]["StartedAt"]
        t0 = time.perf_counter()
        ws.reset("b1", "forked")
        reset_seconds = time.perf_counter() - t0
        assert store.last_swap_seconds is not None and store.last_swap_seconds < 1.0
        # the database server kept running (its store swapped databases inside it); the app restarted
        clone_c.reload()
        assert clone_c.status == "running" and clone_c.attrs["State"]["StartedAt"] == db_started
        assert be.engine.container(be.container_name("b1", "app")).status == "running"
        assert ws.diff("prod", "b1", only_unexpected=True).changes() == []
        clone_side = Side(*store.endpoint("b1"))
        changes, _ = diff_databases("db", prod_side, clone_side, scrubbed)
        assert [c.path for c in changes if c.intent is None] == []
        # the snapshot still holds the changes, and undo brings them back
        snap_side = Side(clone_side.server, store.snap_db("s1"))
        changes, _ = diff_databases("db", prod_side, snap_side, scrubbed)
        assert len([c for c in changes if c.intent is None]) == 5
        ws.undo_reset("b1")
        changes, _ = diff_databases("db", prod_side, Side(*store.endpoint("b1")), scrubbed)
        assert len([c for c in changes if c.intent is None]) == 5
        # again, now that the ready copy of 'forked' is made: a rename, the app restarted; the next
        # ready copy is made in the background, as users get it
        monkeypatch.delenv("REPRO_READY")
        t0 = time.perf_counter()
        ws.reset("b1", "forked")
        ready_reset_seconds = time.perf_counter() - t0
        monkeypatch.setenv("REPRO_READY", "sync")
        assert next(e for e in ws.journal("b1", 10) if e.op == "reset").message == "from the ready copy"
        assert ws.diff("prod", "b1", only_unexpected=True, sections=["data"]).changes() == []

        # a config fix in the clone's worktree reaches its container (bind mount remapped), and is promoted
        wt = ws.worktree("b1")
        (wt / "config" / "app.yaml").write_text("feature:\n  rounding: half-up\n")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/app.yaml", timeout=5) as r:
            assert b"half-up" in r.read()
        result = ws.promote("b1", "Round half up")
        assert result.files == ["config/app.yaml"]

        # the privacy promise: no original value in the clone's files (data, WAL, dead rows)
        ws.stop("b1")
        vol = be.volume_name("b1", "db", "/var/lib/postgresql/data")
        raw = volume_bytes(docker_client, vol)
        assert len(raw) > 10_000_000
        leaked = [v for v in originals if v.encode() in raw]
        assert leaked == []
        assert b"Chiptune" in raw  # the search works: a value that is there is found

        # destroy leaves nothing labelled
        ws.destroy("b1", force=True)
        assert be.leftovers("b1") == []
        left = docker_client.containers.list(all=True, filters={"label": f"repro.workspace={ws.id}"})
        left += docker_client.volumes.list(filters={"label": f"repro.workspace={ws.id}"})
        left += docker_client.networks.list(filters={"label": f"repro.workspace={ws.id}"})
        assert left == []
        # nor anonymous volumes (the PostgreSQL image declares one, which every helper of it gets)
        anonymous = [v.name for v in docker_client.volumes.list() if v.name not in volumes_before
                     and re.fullmatch(r"[0-9a-f]{64}", v.name)]
        assert anonymous == []
    finally:
        for env in [e.name for e in ws.list_envs() if e.kind == "clone"]:
            ws.destroy(env, force=True)
        ws.close()

    # prod: same data, never restarted
    db.reload()
    assert db.status == "running" and db.attrs["State"]["StartedAt"] == prod_started
    assert _psql(db, "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM customer t") == prod_before
    print(f"fork {fork_seconds:.2f} s, reset {reset_seconds:.2f} s (copied), {ready_reset_seconds:.2f} s (ready copy)")


def test_a_bind_mount_whose_worktree_folder_leads_to_prods_is_refused(prod_stack, docker_client):
    """A clone's app mounts its worktree's config/ where prod's mounts prod's. That folder
    made a link to prod's own: starting the clone is refused, nothing of prod's is mounted."""
    root = prod_stack["root"]
    before = sorted((p.name, p.read_bytes()) for p in (root / "config").iterdir())
    earlier = {c.id for c in docker_client.containers.list(all=True, filters={"label": "repro.env=bx"})}
    r = run_cli("fork", "prod", "bx", cwd=root)
    assert r.returncode == 0, r.stderr
    ours = {c.id for c in docker_client.containers.list(all=True, filters={"label": "repro.env=bx"})} - earlier
    assert ours
    try:
        assert run_cli("stop", "bx", cwd=root).returncode == 0
        config = root / ".repro" / "envs" / "bx" / "config"
        for p in config.iterdir():
            p.unlink()
        config.rmdir()
        config.symlink_to(root / "config")
        r = run_cli("start", "bx", cwd=root)
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert "mount into a container" in r.stderr and "outside bx's own folders" in r.stderr, r.stderr
        mounted = [m["Source"] for c in docker_client.containers.list(filters={"label": "repro.env=bx"})
                   for m in c.attrs.get("Mounts") or []]
        assert not any(src.startswith(str(root / "config")) for src in mounted), mounted
    finally:
        gone = run_cli("destroy", "bx", "--yes", "--force", cwd=root)
    # destroy removes the clone's containers and leaves prod's folder the link led to alone
    assert gone.returncode == 0, gone.stderr
    assert ours.isdisjoint(c.id for c in docker_client.containers.list(all=True, filters={"label": "repro.env=bx"}))
    assert sorted((p.name, p.read_bytes()) for p in (root / "config").iterdir()) == before
