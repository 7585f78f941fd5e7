"""``repro-tui demo`` says where it is, prod's URL and port, and what to type next, and never
moves to another port without saying so. The real command, the real demo prod."""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path

from tests.conftest import free_port, run_cli
from workbench.backends.local import kill_services
from workbench.demo import DEMO_BUG, DEMO_PORT


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def hold(port: int) -> socket.socket | None:
    """Listen on ``port`` (as another program would); None when something holds it already."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    s.listen()
    return s


def test_a_taken_port_is_said_first_and_the_guide_uses_the_one_prod_listens_on(tmp_path: Path):
    holder = hold(DEMO_PORT)      # 18080 taken (by this test, or by a demo already running here)
    root = tmp_path / "demo"
    try:
        r = run_cli("demo", str(root), "--no-open", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        out = r.stdout
        moved = re.search(rf"port {DEMO_PORT} is in use .* listens on (\d+)", out.splitlines()[0])
        assert moved, out                                    # the first line, never silently
        port = int(moved.group(1))
        assert port != DEMO_PORT and f"prod's shop API  http://127.0.0.1:{port}  (running" in out
        order = f"http://127.0.0.1:{port}/orders/{DEMO_BUG['order_id']}"
        assert f"curl -i {order}" in out and f"cd {root}" in out and "repro-tui fork prod bug1" in out
        assert status(order) == DEMO_BUG["status"]           # what it printed is what runs
        prod = json.loads(run_cli("status", "prod", "--json", cwd=root).stdout)
        assert prod["services"]["web"]["port"] == port
    finally:
        kill_services(root)
        if holder is not None:
            holder.close()


def test_a_port_asked_for_is_used_or_refused_and_json_says_it_all(tmp_path: Path):
    port = free_port()
    with closing(hold(port)) as taken:
        assert taken is not None
        r = run_cli("demo", str(tmp_path / "refused"), "--no-open", "--port", str(port), cwd=tmp_path)
        assert r.returncode == 1 and f"port {port} on 127.0.0.1 is in use" in r.stderr
        assert "repro-tui demo --port N" in r.stderr and not (tmp_path / "refused").exists()
    root = tmp_path / "demo"
    try:
        r = run_cli("demo", str(root), "--no-open", "--no-start", "--port", str(port), "--json", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)
        assert data["port"] == port and data["url"] == f"http://127.0.0.1:{port}" and data["moved_from"] is None
        assert data["running"] is False and data["next"][1:] == ["repro-tui fork prod bug1", "repro-tui"]
        assert f"port: {port}" in (root / "repro.yaml").read_text()
    finally:
        kill_services(root)
    assert run_cli("demo", "x", "--port", "70000", cwd=tmp_path).returncode == 2
