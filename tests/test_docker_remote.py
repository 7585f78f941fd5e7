"""The docker backend through a remote engine (``DOCKER_HOST=ssh://...``, an OpenSSH server
on loopback with a key made for the test), services listed in repro.yaml, and an engine
that does not answer."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import free_port, git, run_cli
from tests.conftest_docker import BUSYBOX_IMAGE, PG_IMAGE

pytestmark = pytest.mark.docker


@pytest.fixture
def ssh_engine(tmp_path: Path, monkeypatch, docker_client):
    """DOCKER_HOST=ssh://root@127.0.0.1:PORT through a private sshd and a key named in ~/.ssh/config."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd) or os.geteuid() != 0:
        pytest.skip("needs openssh-server and root (scripts/test-setup.sh installs it under CI)")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    keys = tmp_path / "keys"
    keys.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "client")], check=True)
    (keys / "authorized_keys").write_text((keys / "client.pub").read_text())
    os.chmod(keys / "authorized_keys", 0o600)
    port = free_port()
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", "/dev/null", "-p", str(port), "-o", "ListenAddress=127.0.0.1",
                             "-h", str(keys / "host"), "-o", f"AuthorizedKeysFile={keys}/authorized_keys",
                             "-o", "StrictModes=no", "-o", "PermitRootLogin=prohibit-password",
                             "-o", "PasswordAuthentication=no", "-o", f"PidFile={tmp_path}/sshd.pid"],
                            stderr=open(tmp_path / "sshd.log", "wb"))
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    (home / ".ssh" / "config").write_text(textwrap.dedent(f"""\
        Host 127.0.0.1
            IdentityFile {keys}/client
        """))
    # the SDK's paramiko transport checks the host key against ~/.ssh/known_hosts
    host_key = (keys / "host.pub").read_text().split()
    (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DOCKER_HOST", f"ssh://root@127.0.0.1:{port}")
    yield f"ssh://root@127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


LISTED = """\
name: {name}
backend: docker
services:
  web:
    image: {image}
    command: httpd -f -p 8080 -h /www
    ports: ["8080"]
    environment: {{GREETING: hello, SESSION_SECRET: s3cr3t-value}}
    volumes: ["./site:/www:ro", "{volume}:/data"]
clone:
  overrides:
    env: {{GREETING: clone}}
"""


def test_listed_services_through_an_ssh_engine(ssh_engine, tmp_path, docker_client, docker_tag):
    from workbench.workspace import Workspace

    root = tmp_path / "web"
    (root / "site").mkdir(parents=True)
    (root / "site" / "index.html").write_text("prod page\n")
    vol = f"{docker_tag}_data"
    (root / "repro.yaml").write_text(LISTED.format(name=docker_tag, image=BUSYBOX_IMAGE, volume=vol))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "web")
    # prod: a container named after the workspace and the service, with data in a named volume
    docker_client.volumes.create(vol)
    prod = docker_client.containers.run(BUSYBOX_IMAGE, ["sh", "-c", "echo prod-data > /data/file; sleep 600"],
                                        name=f"{docker_tag}_web_1", detach=True, init=True,
                                        volumes={vol: {"bind": "/data", "mode": "rw"}})
    ws = Workspace(root)
    try:
        for _ in range(50):
            if prod.exec_run(["cat", "/data/file"]).exit_code == 0:
                break
            time.sleep(0.1)
        ws.fork("prod", "c1")
        be = ws.backend
        assert be.engine.client.api.base_url.startswith("http+docker://ssh")
        c = be.engine.container(be.container_name("c1", "web"))
        assert c.status == "running"
        # the named volume was copied; the bind mount inside the workspace was uploaded (remote engine)
        assert c.exec_run(["cat", "/data/file"]).output == b"prod-data\n"
        assert c.exec_run(["cat", "/www/index.html"]).output == b"prod page\n"
        env = dict(e.split("=", 1) for e in c.attrs["Config"]["Env"])
        assert env["GREETING"] == "clone"
        shown = be.describe(ws.context("c1"))["web"]
        assert shown["env"]["SESSION_SECRET"].startswith("<secret:")
        assert "s3cr3t-value" not in "\n".join(ws.logs("c1", "web"))
        ws.destroy("c1", force=True)
        assert be.leftovers("c1") == []
    finally:
        for env in [e.name for e in ws.list_envs() if e.kind == "clone"]:
            ws.destroy(env, force=True)
        ws.close()
        prod.remove(force=True)
        docker_client.volumes.get(vol).remove()


def test_unreachable_engine_is_a_clear_error(tmp_path):
    root = tmp_path / "web"
    root.mkdir()
    (root / "repro.yaml").write_text(LISTED.format(name="web", image=BUSYBOX_IMAGE, volume="x"))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "web")
    r = run_cli("fork", "prod", "c1", cwd=root, env={"DOCKER_HOST": "tcp://127.0.0.1:9"})
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert "tcp://127.0.0.1:9" in r.stderr and "docker info" in r.stderr, r.stderr


def test_streams_into_containers_through_an_ssh_engine(ssh_engine, docker_client, docker_tag):
    """What PostgreSQL stores stream through the engine: a psql session kept open (stdin
    attached, one round trip a statement), and a command's stdin fed from a stream (the
    pg_dump | pg_restore fallback), both over the SDK's ssh transport."""
    from workbench.docker_engine import Engine
    from workbench.errors import BackendError
    from workbench.psql import PgServer

    pg = docker_client.containers.run(PG_IMAGE, name=f"{docker_tag}_pg", detach=True)
    engine = Engine("ssh-test")
    try:
        assert engine.client.api.base_url.startswith("http+docker://ssh")
        srv = PgServer(engine, engine.client.containers.get(pg.id), "postgres")
        for _ in range(200):
            if srv._exec(["pg_isready", "-q", "-h", "/var/run/postgresql"], "")[0] == 0:
                break
            time.sleep(0.05)
        for _ in range(50):   # the entry point's first start may still be under way
            try:
                srv.psql("SELECT 1")
                break
            except Exception:  # noqa: BLE001
                time.sleep(0.1)
        t0 = time.perf_counter()
        rows = [srv.value(f"SELECT {i} + 1 AS v") for i in range(20)]
        per_statement = (time.perf_counter() - t0) / 20
        t0 = time.perf_counter()
        srv._exec(["psql", "-X", "-A", "-t", "-d", "postgres", "-c", "SELECT 1"], "postgres")
        per_exec = time.perf_counter() - t0
        assert rows == list(range(1, 21))
        assert per_statement < per_exec / 3, (per_statement, per_exec)     # a round trip, not an exec
        assert srv.query("SELECT 'it''s' AS a, NULL AS b") == [{"a": "it's", "b": None}]
        with pytest.raises(BackendError, match="does not exist"):
            srv.psql("SELECT * FROM no_such_table")
        assert srv.value("SELECT 2 AS v") == 2          # a new session after the failed one
        srv.close()

        data = [bytes([65 + i % 26]) * 65536 for i in range(40)]   # 2.5 MB in chunks
        code, out = engine.exec_stdin(pg, ["sh", "-c", "cat > /tmp/s; wc -c < /tmp/s; md5sum < /tmp/s"], iter(data),
                                      what="a stream")
        assert code == 0, out
        assert out.split()[0] == str(sum(map(len, data))).encode()
        assert hashlib.md5(b"".join(data)).hexdigest().encode() in out
    finally:
        engine.close()
        pg.remove(force=True, v=True)
