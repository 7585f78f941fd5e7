"""An operation cut off by kill -9 at any step leaves no half environment behind."""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import git, run_cli

FORK_STEPS = ["worktree", "services prepared", "copy db + scrub", "copy uploads", "snapshot forked",
              "services started"]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _clone_port(shop: Path, name: str) -> int | None:
    con = sqlite3.connect(shop / ".repro" / "state.db")
    row = con.execute("select ports from envs where name=?", (name,)).fetchone()
    con.close()
    return json.loads(row[0]).get("web") if row and row[0] != "{}" else None


def _assert_no_trace(shop: Path, name: str) -> None:
    assert not (shop / ".repro" / "envs" / name).exists()
    for sub in ("data", "snapshots", "ready", "undo", "run"):
        assert not (shop / ".repro" / sub / name).exists(), sub
    assert f"repro/{name}" not in git(shop, "branch", "--list")
    worktrees = git(shop, "worktree", "list", "--porcelain").splitlines()
    assert f"worktree {(shop / '.repro' / 'envs' / name).resolve()}" not in worktrees
    assert git(shop, "for-each-ref", f"refs/repro/{name}") == ""


@pytest.mark.parametrize("step", FORK_STEPS)
def test_fork_killed_at_each_step_is_rolled_back(shop, step):
    prod_db = shop / "data" / "shop.db"
    before = hashlib.sha256(prod_db.read_bytes()).hexdigest()
    r = run_cli("fork", "prod", "b1", cwd=shop, env={"REPRO_FAULT": f"fork:{step}"})
    assert r.returncode == -9, r.stderr
    port = _clone_port(shop, "b1")
    # any command: the fork is rolled back, no half clone listed
    r = run_cli("list", "--json", cwd=shop)
    assert r.returncode == 0, r.stderr
    assert [e["name"] for e in json.loads(r.stdout)] == ["prod"]
    assert "cut off" in r.stderr
    _assert_no_trace(shop, "b1")
    if port:
        time.sleep(0.2)
        assert not _port_open(port), "a service of the half-made clone is still running"
    assert hashlib.sha256(prod_db.read_bytes()).hexdigest() == before
    log = json.loads(run_cli("log", "--json", cwd=shop).stdout)
    assert log[0]["op"] == "fork" and log[0]["outcome"] == "rolled-back"
    # and the name can be used again
    assert run_cli("fork", "prod", "b1", cwd=shop).returncode == 0


def test_snapshot_killed_leaves_earlier_snapshots_intact(shop):
    assert run_cli("fork", "prod", "b1", cwd=shop).returncode == 0
    assert run_cli("snapshot", "b1", "good", cwd=shop).returncode == 0
    r = run_cli("snapshot", "b1", "half", cwd=shop, env={"REPRO_FAULT": "snapshot:snapshot half"})
    assert r.returncode == -9
    snaps = json.loads(run_cli("snapshots", "b1", "--json", cwd=shop).stdout)
    assert [s["name"] for s in snaps] == ["forked", "good"]
    assert not (shop / ".repro" / "snapshots" / "b1" / "half").exists()
    assert run_cli("reset", "b1", "good", cwd=shop).returncode == 0


@pytest.mark.parametrize("step", ["services stopped", "data swapped", "services started"])
def test_reset_killed_is_finished(shop, step):
    assert run_cli("fork", "prod", "b1", cwd=shop).returncode == 0
    db = shop / ".repro" / "data" / "b1" / "db" / "shop.db"
    con = sqlite3.connect(db)
    con.execute("delete from orders")
    con.commit()
    con.close()
    r = run_cli("reset", "b1", cwd=shop, env={"REPRO_FAULT": f"reset:{step}"})
    assert r.returncode == -9
    r = run_cli("status", "b1", "--json", cwd=shop)
    assert r.returncode == 0
    assert json.loads(r.stdout)["state"] == "running"
    con = sqlite3.connect(db)
    assert con.execute("select count(*) from orders").fetchone()[0] == 200
    con.close()


@pytest.mark.parametrize("step", ["services removed", "data removed"])
def test_destroy_killed_is_finished(shop, step):
    assert run_cli("fork", "prod", "b1", cwd=shop).returncode == 0
    r = run_cli("destroy", "b1", "--yes", cwd=shop, env={"REPRO_FAULT": f"destroy:{step}"})
    assert r.returncode == -9
    r = run_cli("list", "--json", cwd=shop)
    assert [e["name"] for e in json.loads(r.stdout)] == ["prod"]
    _assert_no_trace(shop, "b1")


def test_a_second_writer_waits_or_fails_cleanly(shop):
    from workbench.lock import WriterLock

    lock = WriterLock(shop / ".repro" / "lock")
    (shop / ".repro").mkdir(exist_ok=True)
    lock.acquire("test holds it")
    try:
        t0 = time.monotonic()
        # readers never wait
        r = run_cli("list", cwd=shop)
        assert r.returncode == 0 and time.monotonic() - t0 < 10
        r = run_cli("fork", "prod", "b1", cwd=shop, env={"REPRO_LOCK_TIMEOUT": "1"})
        assert r.returncode == 1 and "busy" in r.stderr and "test holds it" in r.stderr
    finally:
        lock.release()
    assert run_cli("fork", "prod", "b1", cwd=shop).returncode == 0


def test_ctrl_c_during_a_fork_rolls_back_and_exits_130(shop):
    r = run_cli("fork", "prod", "b1", cwd=shop,
                env={"REPRO_FAULT": "fork:copy db + scrub", "REPRO_FAULT_SIGNAL": "INT"})
    assert r.returncode == 130, r.stderr
    assert "interrupted" in r.stderr and "Traceback" not in r.stderr
    _assert_no_trace(shop, "b1")
    log = json.loads(run_cli("log", "--json", cwd=shop).stdout)
    assert log[0]["outcome"] == "rolled-back" and log[0]["message"] == "interrupted"
