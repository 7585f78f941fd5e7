"""What a reset throws away is killed, not asked to stop: a service that ignores SIGTERM does
not hold a reset up. ``clone.stop_grace`` gives a service time to stop where a user wants it;
a plain ``stop`` is always graceful. On both backends, with real processes and containers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import git, run_cli
from tests.conftest_docker import BUSYBOX_IMAGE

TRAPS_TERM = '''\
import http.server, signal, sys
def term(*_):
    print("got TERM", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
print("serving", flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()
'''


def _log(root: Path, env: str, service: str = "web") -> str:
    return (root / ".repro" / "run" / env / f"{service}.log").read_text()


@pytest.fixture
def trapping(shop: Path) -> Path:
    (shop / "app.py").write_text(TRAPS_TERM)
    text = (shop / "repro.yaml").read_text().replace("command: python -m http.server {port} --bind 127.0.0.1",
                                                     "command: python app.py {port}")
    (shop / "repro.yaml").write_text(text)
    git(shop, "add", "-A")
    git(shop, "commit", "-q", "-m", "an app that says when it gets TERM")
    return shop


def test_a_reset_kills_what_it_throws_away_and_a_stop_asks(trapping):
    root = trapping
    assert run_cli("fork", "prod", "b1", cwd=root).returncode == 0
    assert run_cli("reset", "b1", cwd=root).returncode == 0
    assert "got TERM" not in _log(root, "b1")            # killed: the reset did not wait for it
    assert _log(root, "b1").count("serving") == 2        # and it runs again
    assert run_cli("stop", "b1", cwd=root).returncode == 0
    assert "got TERM" in _log(root, "b1")                # a plain stop asks first
    assert run_cli("destroy", "b1", "--yes", cwd=root).returncode == 0


def test_stop_grace_gives_a_service_time_to_stop_on_a_reset(trapping):
    root = trapping
    text = (root / "repro.yaml").read_text().replace("config_files:", "  stop_grace: {web: 5}\nconfig_files:")
    (root / "repro.yaml").write_text(text)
    assert run_cli("fork", "prod", "b1", cwd=root).returncode == 0
    assert run_cli("reset", "b1", cwd=root).returncode == 0
    assert "got TERM" in _log(root, "b1")


def test_stop_grace_is_checked_when_the_file_is_read(trapping):
    root = trapping
    text = (root / "repro.yaml").read_text().replace("config_files:", "  stop_grace: {web: forever}\nconfig_files:")
    (root / "repro.yaml").write_text(text)
    r = run_cli("list", cwd=root)
    assert r.returncode == 2 and "stop_grace of 'web' must be a number of seconds" in r.stderr, r.stderr


@pytest.mark.docker
def test_a_docker_reset_kills_a_container_and_stop_grace_asks_it(docker_client, tmp_path):
    root = tmp_path / "stack"
    root.mkdir()
    script = "trap 'echo got TERM; exit 0' TERM; echo serving; while :; do sleep 0.2; done"
    spec = (f"name: traps\nbackend: docker\nservices:\n  app:\n    image: {BUSYBOX_IMAGE}\n"
            f"    command: [sh, -c, \"{script}\"]\n")
    (root / "repro.yaml").write_text(spec)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "traps")
    try:
        for grace, told in (("", False), ("clone:\n  stop_grace: {app: 5}\n", True)):
            (root / "repro.yaml").write_text(spec + grace)
            name = "g1" if told else "k1"
            r = run_cli("fork", "prod", name, cwd=root)
            assert r.returncode == 0, r.stderr
            assert run_cli("reset", name, cwd=root).returncode == 0
            status = json.loads(run_cli("status", name, "--json", cwd=root).stdout)
            assert status["services"]["app"]["state"] == "running"
            containers = docker_client.containers.list(all=True, filters={"label": [f"repro.env={name}",
                                                                                      "repro.role=service"]})
            deadline = time.monotonic() + 60   # a loaded machine: the restarted shell may take a while to print
            logs = ""
            while time.monotonic() < deadline and logs.count("serving") < 2:
                logs = containers[0].logs().decode()
                time.sleep(0.1)
            assert logs.count("serving") == 2, logs
            assert ("got TERM" in logs) is told, logs
    finally:
        for name in ("k1", "g1"):
            run_cli("destroy", name, "--yes", "--force", cwd=root)
