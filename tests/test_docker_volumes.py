"""The docker backend's own data: a service's named volume is copied at fork, snapshotted
with the service paused (never prod's), put back by a reset, and its snapshot copies are
removed with the snapshot. Services listed in repro.yaml, on a real engine."""

from __future__ import annotations

import textwrap
import time

import pytest

from tests.conftest import git
from tests.conftest_docker import BUSYBOX_IMAGE

pytestmark = pytest.mark.docker

# a service that stops at once on SIGTERM (PID 1 has no default signal handlers)
LOOP = "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"


def _read(container, path: str = "/data/file") -> str:
    code, out = container.exec_run(["cat", path])
    assert code == 0, out
    return out.decode().strip()


def _write(container, text: str, path: str = "/data/file") -> None:
    code, out = container.exec_run(["sh", "-c", f"echo {text} > {path}"])
    assert code == 0, out


def _pauses(client, since: float, until: float) -> list[tuple[str, str]]:
    events = client.events(since=int(since), until=int(until) + 1, decode=True,
                           filters={"type": "container", "event": ["pause", "unpause"]})
    return [(e["Action"], e["Actor"]["Attributes"].get("name", "")) for e in events]


def test_volume_snapshot_reset_and_delete(tmp_path, docker_client, docker_tag, docker_cleanup):
    from workbench.workspace import Workspace

    vol = docker_client.volumes.create(f"{docker_tag}_data")
    docker_cleanup.append(vol)
    prod = docker_client.containers.run(BUSYBOX_IMAGE, ["sh", "-c", "echo prod-data > /data/file; " + LOOP],
                                        name=f"{docker_tag}_web_1", detach=True,
                                        volumes={vol.name: {"bind": "/data", "mode": "rw"}})
    docker_cleanup.append(prod)
    root = tmp_path / "web"
    root.mkdir()
    (root / "repro.yaml").write_text(textwrap.dedent(f"""\
        name: {docker_tag}
        backend: docker
        services:
          web:
            image: {BUSYBOX_IMAGE}
            command: ["sh", "-c", "{LOOP}"]
            volumes: ["{vol.name}:/data"]
        """))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "web")
    for _ in range(50):
        if prod.exec_run(["cat", "/data/file"]).exit_code == 0:
            break
        time.sleep(0.1)

    ws = Workspace(root)
    try:
        ws.fork("prod", "c1")
        be = ws.backend
        clone = be.engine.container(be.container_name("c1", "web"))
        assert _read(clone) == "prod-data"
        assert ws.backend.service_names(ws.context("c1")) == ["web"]
        _write(clone, "v1")

        t0 = time.time()
        ws.snapshot("c1", "s1")
        # the clone's service was held still for the copy; prod's never
        seen = _pauses(docker_client, t0, time.time())
        assert ("pause", clone.name) in seen and ("unpause", clone.name) in seen, seen
        assert not [e for e in seen if e[1] == prod.name]
        clone.reload()
        assert clone.status == "running"
        snaps = be.engine.volumes("c1", role="snapshot", snapshot="s1")
        assert len(snaps) == 1 and snaps[0].attrs["Labels"]["repro.env"] == "c1"

        _write(clone, "v2")
        ws.reset("c1", "s1")
        clone = be.engine.container(be.container_name("c1", "web"))
        assert clone.status == "running"
        assert _read(clone) == "v1"
        ws.reset("c1", "forked")
        assert _read(be.engine.container(be.container_name("c1", "web"))) == "prod-data"

        ws.delete_snapshot("c1", "s1")
        assert be.engine.volumes("c1", role="snapshot", snapshot="s1") == []
        assert be.engine.volumes("c1", role="snapshot", snapshot="forked") != []
        assert ws.logs("c1") is not None

        ws.destroy("c1", force=True)
        assert be.leftovers("c1") == []
    finally:
        for env in [e.name for e in ws.list_envs() if e.kind == "clone"]:
            ws.destroy(env, force=True)
        ws.close()
    assert _read(prod) == "prod-data"
