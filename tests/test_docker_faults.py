"""When Docker or PostgreSQL fails: a prod that allows no replication is copied by
pg_dump | pg_restore; a fork killed at any step, or cut off from the engine, leaves
nothing once the next command has run; a clone's container killed during a snapshot is
a clear error and the previous snapshot stays whole. On a real engine."""

from __future__ import annotations

import json
import os
import socket
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import git, run_cli
from tests.conftest_docker import BUSYBOX_IMAGE, PG_IMAGE, psql_in, volume_bytes

pytestmark = pytest.mark.docker

EMAILS = [f"person{i}@realmail.test" for i in range(1, 41)]


def _labels(project: str, service: str) -> dict[str, str]:
    """The labels docker-compose 1.29 puts on a service's container."""
    return {"com.docker.compose.project": project, "com.docker.compose.service": service,
            "com.docker.compose.container-number": "1", "com.docker.compose.oneoff": "False",
            "com.docker.compose.version": "1.29.2"}


def _psql(container, sql: str, db: str = "app") -> str:
    return psql_in(container, sql, db)


@pytest.fixture(scope="module")
def prod(docker_client):
    """prod: a compose project of PostgreSQL (a small table of people) and an app with a data volume."""
    import uuid

    tag = "f" + uuid.uuid4().hex[:8]
    made = []
    try:
        dbvol = docker_client.volumes.create(f"{tag}_pgdata")
        made.append(dbvol)
        appvol = docker_client.volumes.create(f"{tag}_files")
        made.append(appvol)
        db = docker_client.containers.run(PG_IMAGE, name=f"{tag}_db_1", detach=True, labels=_labels(tag, "db"),
                                          environment={"POSTGRES_DB": "app"},
                                          volumes={dbvol.name: {"bind": "/var/lib/postgresql/data", "mode": "rw"}})
        made.append(db)
        app = docker_client.containers.run(
            BUSYBOX_IMAGE, ["sh", "-c", "[ -f /files/state ] || echo prod > /files/state; "
                                        "exec httpd -f -p 8080 -h /files"],
            name=f"{tag}_app_1", detach=True, init=True, labels=_labels(tag, "app"),
            volumes={appvol.name: {"bind": "/files", "mode": "rw"}})
        made.append(app)
        for _ in range(300):
            if db.exec_run(["pg_isready", "-q", "-h", "/var/run/postgresql"]).exit_code == 0:
                break
            time.sleep(0.1)
        for _ in range(50):   # the entrypoint's init may restart the server once
            if db.exec_run(["psql", "-X", "-d", "app", "-c", "SELECT 1"], user="postgres").exit_code == 0:
                break
            time.sleep(0.1)
        values = ", ".join(f"({i}, '{e}', 'Person {i}')" for i, e in enumerate(EMAILS, 1))
        _psql(db, f"CREATE TABLE people (id int PRIMARY KEY, email text, name text); "
                  f"INSERT INTO people VALUES {values}")
        yield {"tag": tag, "db": db, "app": app}
    finally:
        for obj in reversed(made):
            try:
                obj.remove(force=True, v=True) if obj.__class__.__name__ == "Container" else obj.remove()
            except Exception:  # noqa: BLE001
                pass


@pytest.fixture
def workspace(tmp_path, prod):
    root = tmp_path / "app"
    root.mkdir()
    (root / "repro.yaml").write_text(textwrap.dedent(f"""\
        name: app
        backend: docker
        prod: {{branch: main, compose_project: {prod['tag']}}}
        stores:
          db: {{type: postgres, service: db, database: app, user: postgres}}
        clone:
          scrub:
            db:
              people.email: email
        """))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "app")
    yield root
    from workbench.workspace import Workspace

    ws = Workspace(root)
    try:
        ws.recover()
        for env in [e.name for e in ws.list_envs() if e.kind == "clone"]:
            ws.destroy(env, force=True)
        leftovers = ws.backend.engine.containers() + ws.backend.engine.volumes() + ws.backend.engine.networks()
        for obj in leftovers:  # a failed test leaves nothing on the engine either
            obj.remove(force=True, v=True) if obj.__class__.__name__ == "Container" else obj.remove()
    finally:
        ws.close()


def _labelled(client, ws_id: str, env: str) -> list[str]:
    flt = {"label": [f"repro.workspace={ws_id}", f"repro.env={env}"]}
    return ([c["Names"][0] for c in client.api.containers(all=True, filters=flt)]
            + [v.name for v in client.volumes.list(filters=flt)]
            + [n.name for n in client.networks.list(filters=flt)])


def test_no_replication_allowed_falls_back_to_dump_and_restore(workspace, prod, docker_client):
    from workbench.workspace import Workspace

    db = prod["db"]
    hba = _psql(db, "SHOW hba_file")
    original = db.exec_run(["cat", hba]).output.decode()
    rules = "local replication all reject\nhost replication all all reject\n"
    kept = "".join(line + "\n" for line in original.splitlines() if " replication " not in line)
    try:
        code, out = db.exec_run(["sh", "-c", f"printf '%s' \"$RULES\" > {hba}; pg_ctl reload -D \"$PGDATA\" -s "
                                 "2>/dev/null || kill -HUP $(head -1 \"$PGDATA/postmaster.pid\")"],
                                user="postgres", environment={"RULES": rules + kept})
        assert code == 0, out
        time.sleep(0.3)
        refused = db.exec_run(["pg_basebackup", "-D", "-", "-Ft", "-X", "fetch"], user="postgres")
        assert refused.exit_code != 0 and b"replication" in refused.output

        ws = Workspace(workspace)
        steps: list[str] = []
        try:
            ws.fork("prod", "d1", progress=steps.append)
            assert any("pg_basebackup failed" in s and "pg_dump | pg_restore" in s for s in steps), steps
            store = ws.stores["db"]
            srv, name = store.endpoint("d1")
            rows = srv.query("SELECT id, email, name FROM people ORDER BY id", name)
            assert len(rows) == len(EMAILS) and rows[0]["name"] == "Person 1"
            assert all(r["email"].endswith("@example.invalid") for r in rows)
            assert ws.diff("prod", "d1", only_unexpected=True).changes() == []
            # the clone's server keeps prod's access rules, and no original e-mail is in its files
            assert "local replication all reject" in srv.psql("SELECT pg_read_file(current_setting('hba_file'))")
            ws.stop("d1")
            vol = ws.backend.volume_name("d1", "db", "/var/lib/postgresql/data")
            raw = volume_bytes(docker_client, vol)
            assert [e for e in EMAILS if e.encode() in raw] == []
            assert b"Person 17" in raw
            ws.destroy("d1", force=True)
            assert _labelled(docker_client, ws.id, "d1") == []
        finally:
            ws.close()
    finally:
        db.exec_run(["sh", "-c", f"printf '%s' \"$RULES\" > {hba}; kill -HUP $(head -1 \"$PGDATA/postmaster.pid\")"],
                    user="postgres", environment={"RULES": original})
    assert _psql(db, "SELECT count(*) FROM people WHERE email LIKE '%@realmail.test'") == str(len(EMAILS))


STEPS = ["worktree", "services prepared", "copy db + scrub", "snapshot forked", "services started"]


def test_a_fork_killed_at_each_step_leaves_nothing(workspace, docker_client):
    from workbench.workspace import Workspace

    ws_id = Workspace(workspace).id
    for step in STEPS:
        r = run_cli("fork", "prod", "k1", cwd=workspace, env={"REPRO_FAULT": f"fork:{step}"})
        assert r.returncode == -9, (step, r.stderr)
        if step != "worktree":
            assert _labelled(docker_client, ws_id, "k1"), step   # something was made, and is left for recovery
        r = run_cli("list", "--json", cwd=workspace)               # the next command, a reader, recovers
        assert r.returncode == 0, r.stderr
        assert [e["name"] for e in json.loads(r.stdout)] == ["prod"], (step, r.stdout)
        assert _labelled(docker_client, ws_id, "k1") == [], step
        assert "repro/k1" not in git(workspace, "branch", "--list", "repro/k1")


class EngineProxy:
    """A unix socket in front of the engine's, which the test can cut: the engine then
    stops answering in the middle of whatever a process was doing with it."""

    def __init__(self, path: Path, target: str) -> None:
        self.path, self.target = path, target
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(64)
        self.conns: list[socket.socket] = []
        self.cut_off = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.cut_off:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        self.cut_off = True
        self.server.close()
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


def test_the_engine_lost_during_a_fork_then_back(workspace, docker_client, tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT
    from workbench.workspace import Workspace

    engine_socket = docker_client.api.base_url
    if not engine_socket.startswith("http+docker://localhost") or os.environ.get("DOCKER_HOST", "unix://")[:7] != \
            "unix://":
        pytest.skip("needs the engine on a local unix socket")
    target = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")[len("unix://"):]
    ws_id = Workspace(workspace).id

    # 1. the engine stops answering half way: a clear error, and what was made stays for recovery
    proxy = EngineProxy(tmp_path / "engine.sock", target)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DOCKER_HOST": f"unix://{tmp_path / 'engine.sock'}"}
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "fork", "prod", "u1"], cwd=workspace, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            if docker_client.volumes.list(filters={"label": [f"repro.workspace={ws_id}", "repro.env=u1"]}):
                break
            time.sleep(0.02)
        proxy.cut()
        _out, err = proc.communicate(timeout=120)
    finally:
        proxy.cut()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "Docker:" in err and "engine.sock" in err and "docker info" in err, err
    assert _labelled(docker_client, ws_id, "u1"), "the cut came after the clone's volumes were made"

    # 2. the next command, the engine still unreachable: a clear error; nothing is lost or half removed
    dead = {"DOCKER_HOST": f"unix://{tmp_path / 'nothing-here.sock'}"}
    r = run_cli("fork", "prod", "u2", cwd=workspace, env=dead)
    assert r.returncode == 1 and "nothing-here.sock" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert _labelled(docker_client, ws_id, "u1")

    # 3. the engine back: the next command rolls the cut-off fork back, to the last volume
    r = run_cli("list", "--json", cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert [e["name"] for e in json.loads(r.stdout)] == ["prod"], r.stdout
    assert _labelled(docker_client, ws_id, "u1") == []
    assert _labelled(docker_client, ws_id, "u2") == []
    ws = Workspace(workspace)
    try:
        forks = [e for e in ws.journal("u1") if e.op == "fork"]
        assert [e.outcome for e in forks] == ["rolled-back"], forks
        assert ws.pending() == []
    finally:
        ws.close()


def test_a_container_killed_during_a_snapshot(workspace, docker_client):
    from workbench.errors import BackendError
    from workbench.workspace import Workspace

    ws = Workspace(workspace)
    try:
        ws.fork("prod", "s1c")
        be = ws.backend
        app = be.engine.container(be.container_name("s1c", "app"))
        assert app.exec_run(["sh", "-c", "echo one > /files/state"]).exit_code == 0
        ws.snapshot("s1c", "one")
        # enough data that the copy takes a moment: the app is killed while it is held for the copy
        assert app.exec_run(["sh", "-c", "echo two > /files/state; dd if=/dev/zero of=/files/big bs=1M count=150 "
                                         "2>/dev/null"]).exit_code == 0
        flt = {"label": [f"repro.workspace={ws.id}", "repro.env=s1c", "repro.role=helper"]}
        killed: list[str] = []

        def kill_when_copying() -> None:
            for _ in range(1500):
                if docker_client.api.containers(all=True, filters=flt):
                    docker_client.containers.get(app.id).kill()
                    killed.append(app.name)
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_when_copying)
        killer.start()
        with pytest.raises(BackendError) as caught:
            ws.snapshot("s1c", "two")
        killer.join()
        assert killed
        assert "s1c/app stopped during the snapshot two" in caught.value.message
        assert "repro-tui start s1c" in (caught.value.hint or "")
        # the failed snapshot is gone entirely; the previous one is whole
        assert [s.name for s in ws.snapshots("s1c")] == ["forked", "one"]
        assert be.engine.volumes("s1c", role="snapshot", snapshot="two") == []
        srv, _db = ws.stores["db"].endpoint("s1c")
        assert ws.stores["db"].snap_db("two") not in srv.databases()
        assert ws.stores["db"].snap_db("one") in srv.databases()
        ws.start("s1c")
        ws.reset("s1c", "one")
        app = be.engine.container(be.container_name("s1c", "app"))
        assert app.exec_run(["cat", "/files/state"]).output == b"one\n"
        assert app.exec_run(["ls", "/files"]).output.split() == [b"state"]
    finally:
        ws.close()


def _clone_with_two_states(ws, env: str):
    """Fork prod into ``env``, write "one" into the app's volume, snapshot it as "one", then
    write "two"; returns the app's container."""
    ws.fork("prod", env)
    app = ws.backend.engine.container(ws.backend.container_name(env, "app"))
    assert app.exec_run(["sh", "-c", "echo one > /files/state"]).exit_code == 0
    ws.snapshot(env, "one")
    assert app.exec_run(["sh", "-c", "echo two > /files/state"]).exit_code == 0
    return app


def test_reset_undo_brings_back_a_volume_and_survives_a_cut(workspace, docker_client):
    """A reset keeps the volumes it replaces: --undo brings back the app's files with the
    database, a second undo goes forward again, and an undo cut off half way through its
    volume copies is finished, with no half-copied volume left."""
    from workbench.errors import Interrupted
    from workbench.workspace import Workspace

    def state(ws):
        app = ws.backend.engine.container(ws.backend.container_name("u2", "app"))
        files = app.exec_run(["cat", "/files/state"]).output
        rows = _psql(ws.backend.engine.container(ws.backend.container_name("u2", "db")),
                     "SELECT count(*) FROM people")
        return files, rows

    ws = Workspace(workspace)
    try:
        _clone_with_two_states(ws, "u2")
        be = ws.backend
        _psql(be.engine.container(be.container_name("u2", "db")), "INSERT INTO people VALUES (99, 'x@y.test', 'X')")
        assert state(ws) == (b"two\n", "41")

        ws.reset("u2", "one")
        assert state(ws) == (b"one\n", "40")
        ws.undo_reset("u2")
        assert state(ws) == (b"two\n", "41"), "the undo brings back the volume with the database"
        ws.undo_reset("u2")
        assert state(ws) == (b"one\n", "40"), "a second undo goes forward again"

        # Ctrl-C while the undo copies the volumes back (after the first of its three copies)
        copies = []
        real_copy = be.engine.copy_volume

        def cut_on_second_copy(*args, **kwargs):
            copies.append(args[3])
            if len(copies) == 2:
                raise KeyboardInterrupt
            return real_copy(*args, **kwargs)

        be.engine.copy_volume = cut_on_second_copy
        try:
            with pytest.raises(Interrupted):
                ws.undo_reset("u2")
        finally:
            be.engine.copy_volume = real_copy
        assert len(copies) > 2, "the cut-off undo was finished right away, from the stage it had reached"
        ws.close()
        ws = Workspace(workspace)
        ws.recover()
        entry = next(e for e in ws.journal("u2", 5) if e.op == "undo-reset")
        assert entry.outcome == "completed-by-recovery"
        ws.start("u2")
        assert state(ws) == (b"two\n", "41"), "the cut-off undo was finished, the volume whole"
        assert ws.backend.engine.volumes("u2", role="undo-swap") == []
        ws.undo_reset("u2")
        assert state(ws) == (b"one\n", "40")
    finally:
        ws.close()


def test_a_fork_of_a_clone_takes_the_clones_volumes(workspace, docker_client):
    """Forking a clone (or CLONE@SNAPSHOT) copies that clone's data volumes, not prod's."""
    from workbench.workspace import Workspace

    def files(ws, env):
        app = ws.backend.engine.container(ws.backend.container_name(env, "app"))
        return app.exec_run(["cat", "/files/state"]).output

    ws = Workspace(workspace)
    try:
        _clone_with_two_states(ws, "src")

        ws.fork("src", "live")
        assert files(ws, "live") == b"two\n", "the source clone's live volume"
        ws.fork("src@one", "old")
        assert files(ws, "old") == b"one\n", "the source snapshot's volume"
        assert files(ws, "src") == b"two\n"
        assert ws.backend.engine.container(ws.backend.container_name("src", "app")).status == "running", \
            "the source clone was paused for the copy, and runs again"
    finally:
        ws.close()
