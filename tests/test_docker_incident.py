"""The incident loop on a real Docker engine: prod is a container that a colleague started by
hand during the fire, with a changed environment, serving a config folder someone edited
on the spot. A check fails on prod and on the fresh clone and passes after the fix (its
trailer goes into the commit); both hand changes show as drift and reach a clone forked
with --with-drift, whose container then runs with prod's live environment."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.conftest import git, run_cli
from tests.conftest_docker import BUSYBOX_IMAGE

pytestmark = pytest.mark.docker


@pytest.fixture
def stack(docker_client, docker_tag, docker_cleanup, tmp_path):
    root = tmp_path / "web"
    (root / "config").mkdir(parents=True)
    (root / "config" / "app.yaml").write_text("feature:\n  rounding: floor\n")
    (root / "repro.yaml").write_text(textwrap.dedent(f"""\
        name: {docker_tag}
        backend: docker
        services:
          app:
            image: {BUSYBOX_IMAGE}
            command: [httpd, -f, -p, "8080", -h, /www]
            ports: ["8080"]
            volumes: ["./config:/www:ro"]
            environment: {{FEATURE: "off", API_TOKEN: tok-live-9f8e7d}}
        config_files: [config/*.yaml]
        checks:
          rounding:
            http: GET /app.yaml
            service: app
            expect: {{text: "rounding: round"}}
        """))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "web")
    # prod, started by hand: FEATURE turned on, a new DEBUG, the token rotated
    prod = docker_client.containers.run(
        BUSYBOX_IMAGE, ["httpd", "-f", "-p", "8080", "-h", "/www"], name=f"{docker_tag}-app", detach=True, init=True,
        ports={"8080/tcp": ("127.0.0.1", None)}, volumes={str(root / "config"): {"bind": "/www", "mode": "ro"}},
        environment={"FEATURE": "on", "DEBUG": "1", "API_TOKEN": "tok-rotated-4242"})
    docker_cleanup.append(prod)
    yield root, prod
    from workbench.workspace import Workspace

    ws = Workspace(root)
    try:
        for env in [e.name for e in ws.list_envs() if e.kind == "clone"]:
            ws.destroy(env, force=True)
    finally:
        ws.close()


def cli(root, *args: str, code: int = 0) -> str:
    r = run_cli(*args, cwd=root)
    assert r.returncode == code, (args, r.stdout, r.stderr)
    return r.stdout


def test_checks_drift_and_a_clone_with_prods_drift_on_docker(stack, docker_client):
    root, prod = stack
    prod.reload()
    started = prod.attrs["State"]["StartedAt"]

    out = cli(root, "fork", "prod", "b1")
    assert "check rounding: reproduces: 200 (text differs) on prod and b1" in out
    (root / ".repro" / "envs" / "b1" / "config" / "app.yaml").write_text("feature:\n  rounding: round\n")
    result = json.loads(cli(root, "check", "b1", "--json"))["checks"][0]   # the bind mount serves the fix at once
    assert result["verdict"] == "fixed in b1: 200; prod still 200 (text differs)"
    cli(root, "promote", "b1", "-m", "Round, do not floor")
    assert "Repro-Check: rounding: prod fail 200 (text differs), b1 pass 200" in \
        git(root, "log", "-1", "--format=%B", "repro/b1")

    (root / "config" / "app.yaml").write_text("feature:\n  rounding: floor\n  cap: 70\n")   # the hand edit
    drift = json.loads(cli(root, "drift", "--json"))
    assert drift["files"] == [{"path": "config/app.yaml", "kind": "changed"}]
    assert [(c["path"], c["right"]) for c in drift["config"]] == [("config/app.yaml:feature.cap", 70)]
    containers = {c["path"]: c for c in drift["containers"]}
    assert set(containers) == {"services.app.env.FEATURE", "services.app.env.DEBUG", "services.app.env.API_TOKEN"}
    assert (containers["services.app.env.FEATURE"]["left"], containers["services.app.env.FEATURE"]["right"]) == \
        ("off", "on")
    assert containers["services.app.env.DEBUG"]["kind"] == "added"
    assert containers["services.app.env.API_TOKEN"]["masked"]
    text = cli(root, "drift")
    assert "~ services.app.env.FEATURE  'off' → 'on'" in text
    assert "tok-rotated-4242" not in text + json.dumps(drift) and "tok-live-9f8e7d" not in text

    out = cli(root, "fork", "prod", "b2", "--with-drift")
    assert "with prod's drift: config/app.yaml, services.app.env.API_TOKEN" not in out
    assert "services.app.env.API_TOKEN is a secret, never written into a file" in out
    wt = root / ".repro" / "envs" / "b2"
    assert "cap: 70" in (wt / "config" / "app.yaml").read_text()
    spec = (wt / "repro.yaml").read_text()
    assert "FEATURE: 'on'" in spec and "DEBUG: '1'" in spec and "tok-rotated-4242" not in spec
    from workbench.workspace import Workspace

    ws = Workspace(root)
    try:
        clone = ws.backend.engine.container(ws.backend.container_name("b2", "app"))
        env = dict(e.split("=", 1) for e in clone.attrs["Config"]["Env"])
        assert env["FEATURE"] == "on" and env["DEBUG"] == "1"
        changed = sorted(c.path for c in ws.diff("prod", "b2").services if ".env." in c.path and c.intent is None)
        assert changed == ["services.app.container.env.API_TOKEN",   # running: only the secret still differs
                           "services.app.env.DEBUG", "services.app.env.FEATURE"]   # declared: what promote commits
    finally:
        ws.close()
    cli(root, "promote", "b2", "-m", "What prod has run with since the fire")
    assert git(root, "show", "--name-only", "--format=", "repro/b2").split() == ["config/app.yaml", "repro.yaml"]

    prod.reload()   # prod's container was only read
    assert prod.status == "running" and prod.attrs["State"]["StartedAt"] == started
    assert git(root, "status", "--porcelain") == "M config/app.yaml"   # only the hand edit
