"""Full disk: a workspace on a tmpfs of a few MB, its free space set by a ballast file.

A fork or snapshot that runs out of space fails with one plain error (exit 1, "no space
left", what to do), rolls back whatever it had copied, and leaves prod untouched; once
space is freed, the same request works. Mounting needs root: CI runs as root; elsewhere
these tests are skipped with a message that says so.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.conftest import git, run_cli
from tests.test_reliability_checks import Invariants
from workbench.backends.local import kill_services

MB = 1024 * 1024
DISK_MB = 8


def _make_prod_db(path: Path, mb: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, phone TEXT)")
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, note TEXT)")
    con.executemany("INSERT INTO users VALUES (?, ?, ?, ?)",
                    [(i, f"Person {i}", f"p{i}@realmail.test", f"+44 20 7946 {i:04d}") for i in range(1, 201)])
    rows = int(mb * MB / 600)
    con.executemany("INSERT INTO orders VALUES (?, ?, ?)",
                    [(i, 1 + i % 200, os.urandom(250).hex()) for i in range(rows)])
    con.commit()
    con.close()


@pytest.fixture
def tiny_disk(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("the full-disk tests mount a tmpfs, which needs root (CI runs them as root)")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}); CI runs these tests as root")
    try:
        yield mnt
    finally:
        kill_services(mnt / "shop")
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _workspace(disk: Path, prod_mb: float, scrub: bool, uploads_mb: float = 0.1) -> Path:
    root = disk / "shop"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    shutil.rmtree(root / ".git" / "hooks", ignore_errors=True)  # the samples take room we want measured
    scrub_rules = "  scrub:\n    db:\n      users.email: email\n      users.phone: phone\n" if scrub else ""
    (root / "repro.yaml").write_text(textwrap.dedent("""\
        name: tiny
        stores:
          db: {type: sqlite, path: data/shop.db}
          uploads: {type: files, path: data/uploads}
        clone:
        """) + (scrub_rules or "  overrides: {env: {}}\n"))
    (root / ".gitignore").write_text("data/\n")
    _make_prod_db(root / "data" / "shop.db", prod_mb)
    (root / "data" / "uploads").mkdir()
    (root / "data" / "uploads" / "scan.bin").write_bytes(os.urandom(int(uploads_mb * MB)))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "tiny")
    return root


def _leave_free(root: Path, mb: float) -> None:
    """Fill the disk with a ballast file (beside the workspace) until ``mb`` MB are left."""
    ballast = root.parent / "ballast"
    ballast.unlink(missing_ok=True)
    free = shutil.disk_usage(root).free
    size = max(0, free - int(mb * MB))
    with open(ballast, "wb") as f:
        f.truncate(0)
        f.write(b"\0" * size)  # tmpfs: real pages, not a sparse file
    assert abs(shutil.disk_usage(root).free - mb * MB) < 0.3 * MB


def _assert_plain_no_space(r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 1, (r.returncode, r.stderr)
    text = r.stderr.lower()
    assert "traceback" not in text and "this is a bug" not in text, r.stderr
    assert "no space left" in text, r.stderr
    assert "free" in text, r.stderr  # says what to do
    assert len([line for line in r.stderr.splitlines() if line.strip()]) <= 3, r.stderr


@pytest.mark.parametrize("scrub", [True, False], ids=["scrubbed-copy", "backup-api-copy"])
def test_fork_onto_a_full_disk_fails_plainly_and_leaves_nothing(tiny_disk, scrub):
    root = _workspace(tiny_disk, prod_mb=1.5, scrub=scrub)
    inv = Invariants.record(root)
    _leave_free(root, 1.0)  # prod's store is 1.5 MB: its copy cannot fit
    r = run_cli("fork", "prod", "b1", cwd=root)
    _assert_plain_no_space(r)
    assert inv.check() == []
    (root.parent / "ballast").unlink()
    assert run_cli("fork", "prod", "b1", cwd=root).returncode == 0
    assert inv.check() == ["b1"]


def test_fork_whose_folder_store_does_not_fit(tiny_disk):
    root = _workspace(tiny_disk, prod_mb=0.2, scrub=True, uploads_mb=2.0)
    inv = Invariants.record(root)
    _leave_free(root, 1.5)
    r = run_cli("fork", "prod", "b1", cwd=root, env={"NO_COLOR": "1"})
    _assert_plain_no_space(r)
    assert inv.check() == []


def test_snapshot_onto_a_full_disk_fails_plainly_and_keeps_the_others(tiny_disk):
    root = _workspace(tiny_disk, prod_mb=0.8, scrub=True)
    assert run_cli("fork", "prod", "b1", cwd=root).returncode == 0
    assert run_cli("snapshot", "b1", "s1", cwd=root).returncode == 0
    inv = Invariants.record(root)
    _leave_free(root, 0.4)  # a snapshot of the 0.8 MB copy cannot fit
    r = run_cli("snapshot", "b1", "s2", cwd=root)
    _assert_plain_no_space(r)
    inv.check()  # s2 is not listed, nothing half made, forked and s1 intact
    (root.parent / "ballast").unlink()
    inv.check(restore=True)  # and they restore (a reset makes its next ready copy: room is needed)
    assert run_cli("snapshot", "b1", "s2", cwd=root).returncode == 0


def test_a_disk_full_to_the_last_byte_still_lists(tiny_disk):
    """Readers on a disk with no byte left: they answer, or say plainly that the disk is full."""
    root = _workspace(tiny_disk, prod_mb=0.5, scrub=True)
    assert run_cli("fork", "prod", "b1", cwd=root).returncode == 0
    inv = Invariants.record(root)
    _leave_free(root, 0)
    for argv in (("list",), ("status", "b1"), ("log",), ("snapshots", "b1")):
        r = run_cli(*argv, cwd=root)
        assert "Traceback" not in r.stderr and "This is a bug" not in r.stderr, (argv, r.stderr)
        if r.returncode:
            _assert_plain_no_space(r)
    r = run_cli("fork", "prod", "b2", cwd=root)
    _assert_plain_no_space(r)
    (root.parent / "ballast").unlink()
    assert inv.check() == ["b1"]
