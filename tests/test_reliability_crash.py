"""Crashes at every step: each operation killed (SIGKILL, or Ctrl-C) after each of its steps,
then any command; and random ``kill -9`` at random moments of real runs.

Every case ends with the same check (tests/test_reliability_checks.py): no half clone
listed, nothing stray (process, worktree, branch, ref, file), prod byte-identical, earlier
snapshots intact and still restoring. The table of fault points and outcomes these tests
prove is in RELIABILITY.md.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, git, run_cli
from tests.test_reliability_checks import Invariants, clone_content, journal_rows, listed, workspace_processes

READERS = (("list",), ("status", "keep"), ("log",), ("snapshots", "keep"), ("diff", "prod", "keep"))


def change_data(root: Path, env: str, tag: str) -> None:
    """Change both stores of a clone, so a torn reset (one store swapped, not the other) shows."""
    con = sqlite3.connect(root / ".repro" / "data" / env / "db" / "shop.db")
    con.execute("update orders set status=? where id <= 20", (tag,))
    con.execute("delete from orders where id > 190")
    con.commit()
    con.close()
    (root / ".repro" / "data" / env / "uploads" / f"{tag}.txt").write_text(f"{tag}\n")


def edit_config(root: Path, env: str, text: str = "# shop settings\nfeature:\n  rounding: ceil\ncurrency: EUR\n"):
    (root / ".repro" / "envs" / env / "config" / "app.yaml").write_text(text)


@dataclass
class Case:
    """One operation to cut off: how to prepare it, its command line, its steps, and what
    must hold once the next command has recovered it."""

    op: str
    argv: tuple[str, ...]
    steps: list[str]
    prepare: Callable[[Path, Invariants], None] = lambda root, inv: None
    expect: Callable[[Path, Invariants, list[str]], None] = lambda root, inv, clones: None
    retry: tuple[str, ...] | None = None   # the same request again must then work
    removes: tuple[str, str | None] | None = None  # the snapshot (or clone) it removes, when finished
    outcome: str = "rolled-back"           # what the journal says once it is recovered


# --- preparations (the bystander clone "keep", with snapshot k1, exists in every case) ---

def _modified_after_k1(root: Path, inv: Invariants) -> None:
    change_data(root, "keep", "after-k1")
    inv.extra_content = clone_content(root, "keep")  # type: ignore[attr-defined]


def _reset_then_undo(root: Path, inv: Invariants) -> None:
    change_data(root, "keep", "replaced")
    inv.extra_content = clone_content(root, "keep")  # type: ignore[attr-defined]
    assert run_cli("reset", "keep", "k1", cwd=root).returncode == 0


def _config_change(root: Path, inv: Invariants) -> None:
    edit_config(root, "keep")


def _worktree_and_data_change(root: Path, inv: Invariants) -> None:
    change_data(root, "keep", "after-k1")
    edit_config(root, "keep")


def _second_clone(root: Path, inv: Invariants) -> None:
    assert run_cli("fork", "prod", "gone", cwd=root).returncode == 0
    assert run_cli("snapshot", "gone", "g1", cwd=root).returncode == 0
    inv.record_snapshots()


# --- expectations --------------------------------------------------------------------------

def _absent(name: str):
    def check(root: Path, inv: Invariants, clones: list[str]) -> None:
        assert name not in clones
    return check


def _snapshot_absent(root: Path, inv: Invariants, clones: list[str]) -> None:
    snaps = [s["name"] for s in json.loads(run_cli("snapshots", "keep", "--json", cwd=root).stdout)]
    assert snaps == ["forked", "k1"]


def _reset_finished(root: Path, inv: Invariants, clones: list[str]) -> None:
    assert clone_content(root, "keep") == inv.snapshots[("keep", "k1")][1], "the reset was not finished"
    status = json.loads(run_cli("status", "keep", "--json", cwd=root).stdout)
    assert status["state"] == "running" and status["last_reset"] == "k1"


def _reset_code_finished(root: Path, inv: Invariants, clones: list[str]) -> None:
    _reset_finished(root, inv, clones)
    assert git(root / ".repro" / "envs" / "keep", "status", "--porcelain") == ""


def _undo_whole(root: Path, inv: Invariants, clones: list[str]) -> None:
    now = clone_content(root, "keep")
    before, after = inv.snapshots[("keep", "k1")][1], inv.extra_content  # type: ignore[attr-defined]
    assert now in (before, after), "the undo left the stores torn between two states"
    status = json.loads(run_cli("status", "keep", "--json", cwd=root).stdout)
    assert status["state"] == "running", "services were left stopped"
    assert status["can_undo_reset"]


def _promoted_or_not(root: Path, inv: Invariants, clones: list[str]) -> None:
    wt = root / ".repro" / "envs" / "keep"
    changed = git(wt, "status", "--porcelain")
    ahead = git(root, "rev-list", "--count", "main..repro/keep")
    assert (changed, ahead) in (("M config/app.yaml", "0"), ("", "1")), (changed, ahead)


def _snapshot_deleted(root: Path, inv: Invariants, clones: list[str]) -> None:
    snaps = [s["name"] for s in json.loads(run_cli("snapshots", "keep", "--json", cwd=root).stdout)]
    assert snaps == ["forked"]


FORK_STEPS = ["worktree", "services prepared", "copy db + scrub", "copy uploads", "snapshot forked",
              "services started"]
CLONE_FORK_STEPS = ["worktree", "services prepared", "copy db", "copy uploads", "snapshot forked",
                    "services started"]
CASES = {
    "fork": Case("fork", ("fork", "prod", "b1"), FORK_STEPS, expect=_absent("b1"), retry=("fork", "prod", "b1")),
    "fork-of-snapshot": Case("fork", ("fork", "keep@k1", "b2"), CLONE_FORK_STEPS, expect=_absent("b2"),
                             retry=("fork", "keep@k1", "b2")),
    "fork-of-clone": Case("fork", ("fork", "keep", "b3"), CLONE_FORK_STEPS, expect=_absent("b3"),
                          retry=("fork", "keep", "b3")),
    "snapshot": Case("snapshot", ("snapshot", "keep", "k2"), ["snapshot k2"], expect=_snapshot_absent,
                     retry=("snapshot", "keep", "k2")),
    "reset": Case("reset", ("reset", "keep", "k1"), ["services stopped", "data swapped", "services started"],
                  prepare=_modified_after_k1, expect=_reset_finished,
                  outcome="completed-by-recovery"),
    "reset-code": Case("reset", ("reset", "keep", "k1", "--code"),
                       ["services stopped", "data swapped", "worktree restored", "services started"],
                       prepare=_worktree_and_data_change, expect=_reset_code_finished,
                       outcome="completed-by-recovery"),
    "undo-reset": Case("undo-reset", ("reset", "keep", "--undo"),
                       ["services stopped", "data swapped", "services started"],
                       prepare=_reset_then_undo, expect=_undo_whole, retry=("reset", "keep", "--undo"),
                       outcome="completed-by-recovery"),
    "promote": Case("promote", ("promote", "keep", "-m", "Round up"), ["commit"], prepare=_config_change,
                    expect=_promoted_or_not, retry=("promote", "keep", "-m", "Round up"),
                    outcome="completed-by-recovery"),
    "promote-merge": Case("promote", ("promote", "keep", "-m", "Round up", "--merge"),
                          ["commit", "merge into main"], prepare=_config_change, expect=_promoted_or_not,
                          retry=("promote", "keep", "-m", "Round up", "--merge")),
    "delete-snapshot": Case("delete-snapshot", ("snapshot", "keep", "--delete", "k1"),
                            ["snapshot data deleted", "snapshot forgotten"], expect=_snapshot_deleted,
                            removes=("keep", "k1"),
                            outcome="completed-by-recovery"),
    "destroy": Case("destroy", ("destroy", "gone", "--yes"), ["services removed", "data removed", "worktree removed"],
                    prepare=_second_clone, expect=_absent("gone"), retry=("fork", "prod", "gone"),
                    removes=("gone", None),
                    outcome="completed-by-recovery"),
}
POINTS = [(name, step) for name, case in CASES.items() for step in case.steps]
# Ctrl-C: one step in the middle of the operations whose rollback differs most (it runs in-process)
INT_POINTS = [(name, CASES[name].steps[len(CASES[name].steps) // 2])
              for name in ("fork", "reset", "undo-reset", "promote-merge", "destroy")]


@pytest.fixture
def base(ws, shop):
    """A workspace with a bystander clone 'keep' (changed data, snapshot k1): it must come
    through every crash untouched."""
    ws.fork("prod", "keep")
    change_data(shop, "keep", "k1-state")
    ws.snapshot("keep", "k1")
    ws.close()
    return Invariants.record(shop)


def _cut_off(root: Path, case: Case, step: str, sig: str) -> subprocess.CompletedProcess:
    env = {"REPRO_FAULT": f"{case.op}:{step}", "REPRO_FAULT_SIGNAL": sig}
    return run_cli(*case.argv, cwd=root, env=env)


def _run_case(root: Path, inv: Invariants, name: str, step: str, sig: str) -> None:
    case = CASES[name]
    case.prepare(root, inv)
    r = _cut_off(root, case, step, sig)
    if sig == "KILL":
        assert r.returncode == -9, f"the fault point {case.op}:{step} was never reached: {r.stderr}"
    else:
        assert r.returncode == 130, r.stderr
        assert "interrupted" in r.stderr and "Traceback" not in r.stderr
    # any command: a reader recovers what was cut off
    reader = READERS[hash((name, step)) % len(READERS)]
    r = run_cli(*reader, cwd=root)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    mine = journal_rows(root, f"op = '{case.op}'")[0]
    assert mine["outcome"] == case.outcome, mine
    if case.removes:  # recovery finishes a removal: what it removed is no longer expected
        inv.forget(*case.removes)
    clones = inv.check()
    case.expect(root, inv, clones)
    if case.retry:  # the same request again works, and leaves a consistent workspace
        r = run_cli(*case.retry, cwd=root)
        assert r.returncode == 0, f"{case.retry} after recovery: {r.stderr}"
        if name == "promote-merge":
            inv.refresh_prod()  # prod's branch moves now, through an explicit merge
        inv.record_snapshots()
    inv.check(restore=[k for k in inv.snapshots if k[0] == "keep"])


@pytest.mark.parametrize("name,step", POINTS, ids=[f"{n}:{s}" for n, s in POINTS])
def test_killed_at_every_step(base, shop, name, step):
    _run_case(shop, base, name, step, "KILL")


@pytest.mark.parametrize("name,step", INT_POINTS, ids=[f"{n}:{s}" for n, s in INT_POINTS])
def test_ctrl_c_at_every_operation(base, shop, name, step):
    _run_case(shop, base, name, step, "INT")


def test_destroy_removes_the_ref_of_a_snapshot_cut_off_before_it_was_recorded(base, shop):
    """Found by the random kills: a fork killed inside its 'forked' snapshot had written the
    snapshot's git ref but not its record, and the rollback left the ref behind."""
    git(shop, "update-ref", "refs/repro/keep/half", "HEAD")
    assert run_cli("destroy", "keep", "--yes", "--force", cwd=shop).returncode == 0
    assert git(shop, "for-each-ref", "refs/repro/") == ""
    base.forget("keep")
    assert base.check() == []


def test_a_service_never_runs_unless_it_is_recorded(base, shop):
    """Found by the random kills: a fork killed between starting a service and writing its
    pid file left the service running where no stop, destroy or recovery could find it. A
    service now waits for its pid file; here writing it fails (a link to nowhere is in its
    place), as if the process had died there: the service must never have run."""
    from workbench.workspace import Workspace

    (shop / ".repro" / "run" / "b1").mkdir(parents=True)
    (shop / ".repro" / "run" / "b1" / "web.pid").symlink_to("/nonexistent-folder/web.pid")
    ws = Workspace(shop)
    try:
        with pytest.raises(OSError):
            ws.fork("prod", "b1")
    finally:
        ws.close()
    assert not [c for c in workspace_processes(shop).values() if "http.server" in c and "keep" not in c
                and c not in _keep_services(shop)]
    assert base.check() == ["keep"]


def _keep_services(shop: Path) -> list[str]:
    """The command lines of the clone 'keep''s services: every process of the group its pid
    files record (a service runs as the child of its log pump, in the pump's group)."""
    groups = {json.loads(p.read_text())["pid"] for p in (shop / ".repro" / "run" / "keep").glob("*.pid")}
    return [cmd.strip() for pid, cmd in workspace_processes(shop).items() if os.getpgid(pid) in groups]


def test_a_fault_point_that_is_never_reached_is_noticed(base, shop):
    """The suite's own guard: a misspelt step would make a test pass without a crash."""
    r = _cut_off(shop, CASES["snapshot"], "no such step", "KILL")
    assert r.returncode == 0


# --- random kill -9 during real runs ---------------------------------------------------------

def _popen(root: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "workbench", *args], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _wait_until_it_writes(root: Path, proc: subprocess.Popen) -> None:
    """Until the process holds the writer lock (its operation has begun), or has ended."""
    lock = root / ".repro" / "lock"
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if json.loads(lock.read_text() or "{}").get("pid") == proc.pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.005)


@pytest.mark.slow
def test_random_kill_9_during_real_runs(base, shop):
    """30 real operations (fork, snapshot, reset, undo, delete, destroy, promote), each killed
    with SIGKILL at a random moment (seeded) — the process alone, or its whole process group
    (its git children too) — each followed by the full consistency check."""
    rnd = random.Random(int(os.environ.get("REPRO_RANDOM_SEED", "1042")))
    inv = base
    clones = ["keep"]
    n_fork = killed = 0
    for i in range(30):
        env = rnd.choice(clones)
        snaps = [s["name"] for e in listed(shop) if e["name"] == env for s in e["snapshots"]]
        choice = rnd.choice(["fork", "fork", "snapshot", "reset", "reset", "undo", "delete", "destroy", "promote"])
        if choice == "fork" or (choice == "destroy" and env == "keep"):
            n_fork += 1
            src = rnd.choice(["prod", env, f"{env}@{rnd.choice(snaps)}"])
            argv: tuple[str, ...] = ("fork", src, f"r{n_fork}")
        elif choice == "snapshot":
            change_data(shop, env, f"it{i}")
            argv = ("snapshot", env, f"x{i}")
        elif choice == "reset":
            change_data(shop, env, f"it{i}")
            argv = ("reset", env, rnd.choice(snaps))
        elif choice == "undo":
            argv = ("reset", env, "--undo")
        elif choice == "delete":
            extra = [s for s in snaps if s != "forked"]
            argv = ("snapshot", env, "--delete", rnd.choice(extra)) if extra else ("snapshot", env, f"x{i}")
        elif choice == "destroy":
            argv = ("destroy", env, "--yes", "--force")
        else:
            edit_config(shop, env, f"# iteration {i}\ncurrency: EUR\n")
            argv = ("promote", env, "-m", f"Iteration {i}")
        print(f"iteration {i}: {' '.join(argv)}")
        proc = _popen(shop, *argv)
        _wait_until_it_writes(shop, proc)
        time.sleep(rnd.uniform(0, 0.25))  # a random moment of the operation itself
        if proc.poll() is None:
            killed += 1
            if rnd.random() < 0.5:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            print("  killed")
        _out, err = proc.communicate()
        assert b"Traceback" not in err, err.decode()
        # the next command recovers it; what a finished delete or destroy removed is no longer expected
        live = {e["name"]: [s["name"] for s in e["snapshots"]] for e in listed(shop)[1:]}
        for env_name, snap in list(inv.snapshots):
            if env_name not in live or snap not in live[env_name]:
                assert argv[0] in ("destroy", "snapshot") and env_name == argv[1], \
                    f"{env_name}@{snap} vanished during {argv}"
                inv.forget(env_name, snap)
        inv.record_snapshots()
        clones = inv.check(restore=i % 5 == 4)  # every so often, every snapshot is restored too
        assert "keep" in clones
    recovered = journal_rows(shop, "outcome in ('rolled-back', 'completed-by-recovery')")
    print(f"{killed} runs killed, {len(recovered)} operations cut off half way and recovered")
    assert killed >= 10 and len(recovered) >= 8, "too few runs were cut off half way: the timing needs a look"
