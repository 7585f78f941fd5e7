"""Shared fixtures: real git repositories, real SQLite files, real processes."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.shop import shop_yaml
from workbench.backends.local import kill_services

HERE = Path(__file__).parent
DATA = HERE / "data"
ROOT = HERE.parent

# Tests commit: give git an identity unless one is set (a CI machine may have none).
for var, value in (
    ("GIT_AUTHOR_NAME", "Test User"),
    ("GIT_AUTHOR_EMAIL", "test@example.invalid"),
    ("GIT_COMMITTER_NAME", "Test User"),
    ("GIT_COMMITTER_EMAIL", "test@example.invalid"),
):
    os.environ.setdefault(var, value)
# Ready copies are made in the background in real use; tests make them in the foreground
# unless a test asks for the background helper, so no process outlives its test.
os.environ.setdefault("REPRO_READY", "sync")


@pytest.fixture(scope="session", autouse=True)
def _no_process_outlives_the_test_run(tmp_path_factory):
    """Clones forked by tests and never destroyed keep their edge process (mail sink, port
    forwarders) until their folder is removed, which pytest does runs later: at the end of
    the run, every process started in its temporary folders is stopped."""
    yield
    inside = (str(tmp_path_factory.getbasetemp()) + os.sep).encode()   # a path in it, not --basetemp=
    proc = Path("/proc")
    if not proc.is_dir():
        return
    ours, pid = set(), os.getpid()       # this process and those that started it (make, a shell)
    while pid > 1 and pid not in ours:
        ours.add(pid)
        try:
            pid = int((proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in ours:
            continue
        try:
            if inside in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), 15)
        except (OSError, ValueError):
            continue


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """The real command line, as a user runs it (a new process)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
    )


def make_shop_db(path: Path, users: int = 50) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT UNIQUE, phone TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), total REAL, status TEXT);
    """)
    db.executemany(
        "INSERT INTO users VALUES (?, ?, ?, ?)",
        [(i, f"Zoë Person{i}", f"person{i}@realmail.test", f"+44 20 7946 {i:04d}") for i in range(1, users + 1)],
    )
    db.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?)", [(i, 1 + i % users, i * 1.5, "paid") for i in range(1, 201)]
    )
    db.commit()
    db.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def shop(tmp_path: Path):
    """A small real workspace: git repo, repro.yaml, a SQLite store, a folder store, one HTTP service."""
    root = tmp_path / "shop"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "repro.yaml").write_text(shop_yaml(free_port()))
    (root / "config").mkdir()
    (root / "config" / "app.yaml").write_text("# shop settings\nfeature:\n  rounding: floor\ncurrency: EUR\n")
    (root / ".gitignore").write_text("data/\n")
    make_shop_db(root / "data" / "shop.db")
    (root / "data" / "uploads").mkdir()
    (root / "data" / "uploads" / "invoice-1.txt").write_text("invoice 1\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "shop")
    yield root
    kill_services(root)


@pytest.fixture
def ws(shop: Path):
    from workbench.workspace import Workspace

    w = Workspace(shop)
    yield w
    w.close()


@pytest.fixture
def chinook(tmp_path: Path):
    """A workspace whose prod store is the Chinook database (MIT licence, tests/data/LICENSE.md)."""
    root = tmp_path / "music"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "data").mkdir()
    shutil.copy(DATA / "Chinook_Sqlite.sqlite", root / "data" / "chinook.sqlite")
    (root / ".gitignore").write_text("data/\n")
    (root / "repro.yaml").write_text(
        textwrap.dedent("""\
        name: music
        stores:
          db: {type: sqlite, path: data/chinook.sqlite}
        clone:
          scrub:
            db:
              Customer.Email: email
              Customer.Phone: phone
              Customer.Fax: null
              Employee.Email: email
              Employee.Phone: phone
        """)
    )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "music")
    yield root
    kill_services(root)


pytest_plugins = ["tests.conftest_docker"]
