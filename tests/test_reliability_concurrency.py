"""Concurrency: one writer at a time, the other waits or fails cleanly; a lock left by a dead
process is taken over; readers never wait, not even for a writer that hangs.

Writers are real processes (the command line); "the screen" is a Workspace held open in
this process, as the screen holds one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.test_reliability_checks import Invariants, clone_content
from tests.test_reliability_crash import change_data

READERS = [("list",), ("status", "keep"), ("snapshots", "keep"), ("log",), ("diff", "prod", "keep"),
           ("logs", "keep"), ("status", "prod")]


def _popen(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "workbench", *args], cwd=root, env=full, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _waiting_for_the_lock(pid: int, lock: Path) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(lock) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def _both(root: Path, a: tuple[str, ...], b: tuple[str, ...]) -> list[tuple[int, str]]:
    """Two writers that both checked their request while the workspace was free, and both
    wait for the lock (held here until both are waiting): the race made certain, not left
    to timing. Their exit codes and error output."""
    from workbench.lock import WriterLock

    lock = WriterLock(root / ".repro" / "lock")
    lock.acquire("the test, until both writers wait")
    try:
        procs = [_popen(root, *a), _popen(root, *b)]
        deadline = time.monotonic() + 60
        while not all(_waiting_for_the_lock(p.pid, lock.path.resolve()) for p in procs):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a writer never waited"
            time.sleep(0.02)
    finally:
        lock.release()
    out = []
    for p in procs:
        _o, err = p.communicate(timeout=120)
        assert "Traceback" not in err and "This is a bug" not in err, err
        out.append((p.returncode, err))
    return out


@pytest.fixture
def base(ws, shop):
    ws.fork("prod", "keep")
    ws.close()
    change_data(shop, "keep", "k1-state")
    assert run_cli("snapshot", "keep", "k1", cwd=shop).returncode == 0
    return Invariants.record(shop)


def test_two_forks_at_once_both_made_one_after_the_other(base, shop):
    results = _both(shop, ("fork", "prod", "a1"), ("fork", "keep@k1", "a2"))
    assert [code for code, _ in results] == [0, 0], results
    assert sorted(base.check(restore=True)) == ["a1", "a2", "keep"]
    log = json.loads(run_cli("log", "--json", cwd=shop).stdout)
    forks = sorted((j["started_at"], j["finished_at"]) for j in log if j["op"] == "fork" and j["env"] in ("a1", "a2"))
    assert forks[0][1] <= forks[1][0], "the two forks overlapped: the writer lock did not hold"


def test_two_forks_of_one_name_one_wins_the_other_is_refused(base, shop):
    results = _both(shop, ("fork", "prod", "same"), ("fork", "prod", "same"))
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, err in results if code == 1)
    assert "exists already" in loser
    assert base.check(restore=True) == ["keep", "same"]
    status = json.loads(run_cli("status", "same", "--json", cwd=shop).stdout)
    assert status["state"] == "running", "the refused fork damaged the one that won"


def test_two_snapshots_of_one_name_one_wins_the_first_is_kept(base, shop):
    results = _both(shop, ("snapshot", "keep", "twin"), ("snapshot", "keep", "twin"))
    assert sorted(code for code, _ in results) == [0, 1], results
    assert "already" in next(err for code, err in results if code == 1)
    base.record_snapshots()
    base.check(restore=True)


def test_fork_of_a_clone_being_destroyed_fails_cleanly_or_comes_first(base, shop):
    results = _both(shop, ("fork", "keep", "child"), ("destroy", "keep", "--yes", "--force"))
    (fork_code, fork_err), (destroy_code, _err) = results
    assert destroy_code == 0, results
    if fork_code:
        assert fork_code == 1 and "no environment named 'keep'" in fork_err, fork_err
    base.forget("keep")
    assert base.check(restore=True) == ([] if fork_code else ["child"])


def test_the_screen_and_the_command_line_reset_the_same_clone(base, shop):
    """A Workspace held open (as the screen holds one) resets in a thread while the command
    line resets the same clone: both succeed, one after the other, and the data is whole."""
    from workbench.workspace import Workspace

    screen = Workspace(shop)
    errors: list[BaseException] = []

    def resets() -> None:
        try:
            for _ in range(3):
                screen.reset("keep", "forked")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=resets)
    t.start()
    for _ in range(3):
        r = run_cli("reset", "keep", "k1", cwd=shop)
        assert r.returncode == 0, r.stderr
    t.join(60)
    screen.close()
    assert not errors, errors
    assert clone_content(shop, "keep") in (base.snapshots[("keep", "forked")][1], base.snapshots[("keep", "k1")][1])
    base.check(restore=True)


def test_a_lock_left_by_a_dead_process_is_taken_over(base, shop):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from workbench.lock import WriterLock;"
         "WriterLock(Path(sys.argv[1])).acquire('fork'); print('held', flush=True); time.sleep(600)",
         str(shop / ".repro" / "lock")],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    r = run_cli("fork", "prod", "b1", cwd=shop, env={"REPRO_LOCK_TIMEOUT": "1"})
    assert r.returncode == 1 and "busy" in r.stderr and f"pid {holder.pid}" in r.stderr, r.stderr
    holder.kill()
    holder.wait()
    assert json.loads((shop / ".repro" / "lock").read_text())["pid"] == holder.pid  # the dead holder's name stays
    t0 = time.monotonic()
    r = run_cli("fork", "prod", "b1", cwd=shop, env={"REPRO_LOCK_TIMEOUT": "5"})
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 5
    base.check()


def test_services_do_not_inherit_the_lock(base, shop):
    """A service started by a fork outlives it; if it kept the lock's descriptor, no writer
    could ever run again."""
    from workbench.lock import WriterLock

    assert WriterLock(shop / ".repro" / "lock").is_free()
    lock = str((shop / ".repro" / "lock").resolve())
    for pid_file in (shop / ".repro" / "run").glob("*/*.pid"):
        pid = json.loads(pid_file.read_text())["pid"]
        fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        assert lock not in fds, f"service {pid_file.stem} holds the writer lock"


def _time_readers(root: Path) -> dict[str, float]:
    took = {}
    for argv in READERS:
        t0 = time.monotonic()
        r = run_cli(*argv, cwd=root, env={"REPRO_LOCK_TIMEOUT": "5"})
        took[" ".join(argv)] = time.monotonic() - t0
        assert r.returncode == 0, f"{argv} while a writer holds the lock: {r.stderr}"
    return took


def test_readers_never_wait_for_a_writer_that_hangs(base, shop):
    """A fork stopped (SIGSTOP) half way holds the lock: every reader still answers at once
    (the lock timeout is 5 s: a reader that waited would take that long), a second writer
    says 'busy', and the fork finishes once it is continued."""
    writer = _popen(shop, "fork", "prod", "b1",
                    env={"REPRO_FAULT": "fork:copy db + scrub", "REPRO_FAULT_SIGNAL": "STOP"})
    deadline = time.monotonic() + 30
    while not Path(f"/proc/{writer.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T":
        assert time.monotonic() < deadline and writer.poll() is None, "the writer never reached its fault point"
        time.sleep(0.05)
    try:
        took = _time_readers(shop)
        assert max(took.values()) < 3, took
        listed = json.loads(run_cli("list", "--json", cwd=shop).stdout)
        assert {e["name"]: e["state"] for e in listed}["b1"] == "pending"  # shown, not hidden, not blocking
        r = run_cli("snapshot", "keep", "k2", cwd=shop, env={"REPRO_LOCK_TIMEOUT": "1"})
        assert r.returncode == 1 and "busy" in r.stderr and "fork" in r.stderr, r.stderr
    finally:
        os.kill(writer.pid, signal.SIGCONT)
    _o, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    base.check()


def test_readers_show_a_pending_recovery_without_waiting(base, shop):
    """A fork killed half way, and a writer holding the lock: readers cannot recover it, so
    they show it, at once."""
    from workbench.lock import WriterLock

    r = run_cli("fork", "prod", "b1", cwd=shop, env={"REPRO_FAULT": "fork:copy uploads"})
    assert r.returncode == -9
    lock = WriterLock(shop / ".repro" / "lock")
    lock.acquire("test holds it")
    try:
        took = _time_readers(shop)
        assert max(took.values()) < 3, took
        listed = json.loads(run_cli("list", "--json", cwd=shop).stdout)
        assert {e["name"]: e["state"] for e in listed}["b1"] == "pending"  # shown, never hidden
    finally:
        lock.release()
    base.check()  # the next command recovers it
