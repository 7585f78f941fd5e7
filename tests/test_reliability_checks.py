"""The invariants every reliability test asserts, and tests that they catch what they must.

After any operation — finished, refused, or cut off and recovered — a workspace must be
*consistent*:

* every clone that ``list`` shows is whole (worktree, branch, data of every store, each of
  its snapshots with its data and its git ref), and no operation is left pending;
* nothing else remains: no worktree, branch, ``refs/repro/`` ref, folder under ``.repro/``,
  half-written ``.tmp-``/``.swap-``/``.trash-`` copy, git lock file or process of a clone
  that is not listed;
* prod is byte-identical: every file of its checkout, its branch, its index, no merge left;
* earlier snapshots are intact (same bytes) and still restore (a reset brings their rows back).

``Invariants`` records a baseline and checks all of that; the tests below plant each kind
of leak on purpose and prove that the checker sees it (a checker that cannot fail proves
nothing).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import git, run_cli

STORE_DIRS = ("data", "snapshots", "ready", "undo")
HALF_MADE = (".tmp-", ".swap-", ".trash-")


def sha_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Relative path -> sha256 (or link target) of every file under ``folder``."""
    out: dict[str, str] = {}
    if not folder.exists():
        return out
    for dirpath, dirs, files in os.walk(folder):
        rel_dir = os.path.relpath(dirpath, folder)
        dirs[:] = [d for d in dirs if os.path.normpath(os.path.join(rel_dir, d)) not in skip]
        for name in files:
            p = Path(dirpath) / name
            rel = os.path.normpath(os.path.join(rel_dir, name))
            out[rel] = "link:" + os.readlink(p) if p.is_symlink() else sha_file(p)
    return out


def prod_digest(root: Path) -> dict[str, str]:
    """Every file of prod's checkout (data included), except repro-tui's own folder and git's."""
    return tree_digest(root, skip=(".repro", ".git"))


def db_rows(path: Path | str) -> str:
    """A digest of every row of every table (the logical content, whatever the file's bytes)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        h = hashlib.sha256()
        tables = [r[0] for r in con.execute(
            "select name from sqlite_schema where type='table' and name not like 'sqlite_%' order by name")]
        for t in tables:
            h.update(t.encode())
            for row in con.execute(f'select * from "{t}" order by rowid'):
                h.update(repr(row).encode())
        return h.hexdigest()
    finally:
        con.close()


def clone_content(root: Path, env: str) -> tuple[str, dict[str, str]]:
    """What a clone's data holds now: the rows of its database and the files of its uploads."""
    data = root / ".repro" / "data" / env
    dbs = list((data / "db").glob("*.db")) if (data / "db").exists() else []
    rows = db_rows(dbs[0]) if dbs else "-"
    return rows, tree_digest(data / "uploads")


def cli_json(root: Path, *args: str, env: dict[str, str] | None = None):
    r = run_cli(*args, "--json", cwd=root, env=env)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 0, f"{args}: {r.stderr}"
    return json.loads(r.stdout)


def listed(root: Path) -> list[dict]:
    """``list --json`` as the engine answers it (in this process: no interpreter start per check).
    Like every reader, it first recovers what was cut off, if nobody is writing."""
    from workbench.workspace import Workspace

    ws = Workspace(root)
    try:
        ws.try_recover()
        return json.loads(json.dumps([e.as_dict() for e in ws.list_envs()], default=str))
    finally:
        ws.close()


def journal_rows(root: Path, where: str = "1") -> list[dict]:
    """Journal entries straight from the state store (read-only)."""
    con = sqlite3.connect(f"file:{root / '.repro' / 'state.db'}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(f"select * from journal where {where} order by id desc")]
    finally:
        con.close()


def workspace_processes(root: Path) -> dict[int, str]:
    """pid -> command line of every live process that works in the workspace (its cwd is
    inside it, or its command line names it)."""
    root_s = str(root.resolve())
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[0] == "Z":
                continue
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                cwd = ""
        except (OSError, IndexError):
            continue
        if int(fields[1]) == os.getpid() and cmd.startswith("git cat-file"):
            continue  # GitPython's helper of a Workspace this test process holds open
        if cwd == root_s or cwd.startswith(root_s + "/") or root_s in cmd:
            out[pid] = cmd.strip()
    return out


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


@dataclass
class Invariants:
    """A workspace's baseline, and the check that it is still consistent."""

    root: Path
    prod_files: dict[str, str] = field(default_factory=dict)
    prod_head: str = ""
    prod_branch: str = "main"
    snapshots: dict[tuple[str, str], tuple[dict[str, str], tuple[str, dict[str, str]]]] = field(default_factory=dict)

    @classmethod
    def record(cls, root: Path, branch: str = "main") -> Invariants:
        inv = cls(root=root, prod_branch=branch)
        inv.refresh_prod()
        inv.record_snapshots()
        return inv

    def refresh_prod(self) -> None:
        self.prod_files = prod_digest(self.root)
        self.prod_head = git(self.root, "rev-parse", f"refs/heads/{self.prod_branch}")

    def record_snapshot(self, env: str, snap: str, content: tuple[str, dict[str, str]] | None = None) -> None:
        """Remember a snapshot's bytes and what it restores to (by default: the clone's data
        now, which is what a snapshot taken just now holds)."""
        folder = self.root / ".repro" / "snapshots" / env / snap
        self.snapshots[(env, snap)] = (tree_digest(folder), content or clone_content(self.root, env))

    def record_snapshots(self) -> None:
        """Every snapshot that exists now (their content read from their own files)."""
        base = self.root / ".repro" / "snapshots"
        if not base.exists():
            return
        for env_dir in base.iterdir():
            for snap_dir in env_dir.iterdir():
                if snap_dir.name.startswith(HALF_MADE):
                    continue
                dbs = list((snap_dir / "db").glob("*.db"))
                content = (db_rows(dbs[0]) if dbs else "-", tree_digest(snap_dir / "uploads"))
                self.snapshots[(env_dir.name, snap_dir.name)] = (tree_digest(snap_dir), content)

    def forget(self, env: str, snap: str | None = None) -> None:
        for key in list(self.snapshots):
            if key[0] == env and (snap is None or key[1] == snap):
                del self.snapshots[key]

    # the check -------------------------------------------------------------------------
    def check(self, *, restore: bool | list[tuple[str, str]] = False, kept_branches: tuple[str, ...] = (),
              prod_changed: bool = False) -> list[str]:
        """Assert consistency; returns the clones listed. ``restore``: also reset to every
        recorded snapshot (or to the ones given) and compare the rows it brings back."""
        root = self.root
        envs = listed(root)
        names = [e["name"] for e in envs]
        assert names[0] == "prod"
        clones = names[1:]
        for e in envs[1:]:
            assert e["state"] not in ("pending", "broken"), e
        running = journal_rows(root, "outcome = 'running' and op != 'prepare-ready'")
        assert not running, running
        self._check_whole({e["name"]: [s["name"] for s in e["snapshots"]] for e in envs[1:]})
        self._check_no_strays(clones, kept_branches)
        self._check_processes(clones)
        if not prod_changed:
            self.check_prod()
        self._check_snapshots(clones, restore)
        return clones

    def check_prod(self) -> None:
        root = self.root
        now = prod_digest(root)
        changed = sorted(k for k in set(now) | set(self.prod_files) if now.get(k) != self.prod_files.get(k))
        assert not changed, f"prod's files changed: {changed}"
        assert git(root, "rev-parse", f"refs/heads/{self.prod_branch}") == self.prod_head, "prod's branch moved"
        assert git(root, "status", "--porcelain") == "", "prod's checkout has changes"
        git_dir = root / ".git"
        for leftover in ("MERGE_HEAD", "index.lock", "HEAD.lock", f"refs/heads/{self.prod_branch}.lock"):
            assert not (git_dir / leftover).exists(), leftover

    def _check_whole(self, clones: dict[str, list[str]]) -> None:
        root = self.root
        for env, snaps in clones.items():
            wt = root / ".repro" / "envs" / env
            assert (wt / ".git").is_file(), f"{env}: no worktree"
            assert git(root, "rev-parse", "--verify", "-q", f"refs/heads/repro/{env}"), f"{env}: no branch"
            assert git(wt, "rev-parse", "--abbrev-ref", "HEAD") == f"repro/{env}"
            for store in ("db", "uploads"):
                assert (root / ".repro" / "data" / env / store).is_dir(), f"{env}: no data for {store}"
            assert "forked" in snaps, f"{env}: lost its 'forked' snapshot"
            on_disk = {p.name for p in (root / ".repro" / "snapshots" / env).iterdir()}
            assert on_disk == set(snaps), f"{env}: snapshot folders {on_disk} vs listed {snaps}"
            refs = set(git(root, "for-each-ref", "--format=%(refname)", f"refs/repro/{env}/").split())
            assert refs == {f"refs/repro/{env}/{s}" for s in snaps}, f"{env}: refs {refs} vs {snaps}"
            for s in snaps:
                for store in ("db", "uploads"):
                    assert (root / ".repro" / "snapshots" / env / s / store).is_dir(), f"{env}@{s}: no {store}"

    def _check_no_strays(self, clones: list[str], kept_branches: tuple[str, ...]) -> None:
        root = self.root
        repro = root / ".repro"
        allowed = set(clones)
        for sub in ("envs", *STORE_DIRS):
            folder = repro / sub
            if folder.exists():
                extra = {p.name for p in folder.iterdir()} - allowed
                extra = {n for n in extra if not (sub == "ready" and n.endswith(".lock") and n[:-5] in allowed)}
                assert not extra, f".repro/{sub} holds {sorted(extra)}"
        if (repro / "run").exists():
            extra = {p.name for p in (repro / "run").iterdir()} - allowed - {"prod"}
            assert not extra, f".repro/run holds {sorted(extra)}"
        for sub in STORE_DIRS:
            for dirpath, dirs, files in os.walk(repro / sub):
                # a whole state a reset replaced, deleted by the ready helper after the reset
                # (or by the next reset): not a half-made copy; one per store at most by its name
                pending = [n for n in dirs if sub == "undo" and n.startswith(".trash-")]
                half = [n for n in dirs + files if n.startswith(HALF_MADE) and n not in pending]
                assert not half, f"half-made copies left in {dirpath}: {half}"
        worktrees = [line[len("worktree "):] for line in git(root, "worktree", "list", "--porcelain").splitlines()
                     if line.startswith("worktree ")]
        expected = {str(root.resolve())} | {str((repro / "envs" / c).resolve()) for c in clones}
        assert set(worktrees) == expected, f"worktrees {worktrees}"
        assert "prunable" not in git(root, "worktree", "list", "--porcelain")
        branches = set(git(root, "for-each-ref", "--format=%(refname:short)", "refs/heads/repro/").split())
        extra = branches - {f"repro/{c}" for c in clones} - set(kept_branches)
        # a destroyed clone's branch is kept when it has commits prod's branch lacks (a promote
        # without --merge): by design, not a leak; one without such a commit is a leak
        stray = [b for b in extra if git(root, "rev-list", "--count", f"{self.prod_branch}..{b}") == "0"]
        assert not stray, f"branches left behind: {stray}"
        assert {f"repro/{c}" for c in clones} <= branches
        refs = git(root, "for-each-ref", "--format=%(refname)", "refs/repro/").split()
        assert all(r.split("/")[2] in allowed for r in refs), f"refs of unlisted clones: {refs}"
        wt_admin = root / ".git" / "worktrees"
        if wt_admin.exists():
            for admin in wt_admin.iterdir():
                assert not (admin / "index.lock").exists(), f"{admin.name}: index.lock left"
        for lock in (root / ".git").rglob("*.lock"):
            raise AssertionError(f"git lock file left: {lock}")

    def _check_processes(self, clones: list[str]) -> None:
        root = self.root
        services: set[int] = set()
        for pid_file in (root / ".repro" / "run").glob("*/*.pid"):
            env = pid_file.parent.name
            if env in clones or env == "prod":
                try:
                    services.add(json.loads(pid_file.read_text())["pid"])
                except (OSError, ValueError, KeyError):
                    pass
        groups = {_pgid(p) for p in services} - {None}
        deadline = time.monotonic() + 5  # a ready-copy helper finishing its work may take a moment
        while True:
            strays = {pid: cmd for pid, cmd in workspace_processes(root).items()
                      if pid not in services and _pgid(pid) not in groups}
            if not strays or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert not strays, f"stray processes: {strays}"

    def _check_snapshots(self, clones: list[str], restore: bool | list[tuple[str, str]]) -> None:
        for (env, snap), (files, _content) in self.snapshots.items():
            if env not in clones:
                continue
            now = tree_digest(self.root / ".repro" / "snapshots" / env / snap)
            assert now == files, f"snapshot {env}@{snap} changed or vanished"
        targets = [k for k in (list(self.snapshots) if restore is True else (restore or [])) if k[0] in clones]
        if not targets:
            return
        from workbench.workspace import Workspace

        ws = Workspace(self.root)  # the engine itself, as the screen calls it: no process start per reset
        try:
            for env, snap in targets:
                ws.reset(env, snap)
                assert clone_content(self.root, env) == self.snapshots[(env, snap)][1], f"{env}@{snap} restores wrong"
        finally:
            ws.close()


# --- the checker catches what it must ------------------------------------------------

@pytest.fixture
def checked(ws, shop):
    """A clone with a snapshot, its baseline recorded."""
    ws.fork("prod", "b1")
    ws.snapshot("b1", "s1")
    ws.close()
    return Invariants.record(shop)


def test_a_consistent_workspace_passes(checked):
    assert checked.check(restore=True) == ["b1"]


@pytest.mark.parametrize("plant", [
    "stray-branch", "stray-ref", "stray-folder", "half-copy", "git-lock", "prod-file", "prod-branch",
    "snapshot-bytes", "lost-snapshot-data", "stray-process",
])
def test_the_checker_sees_every_kind_of_leak(checked, shop, plant):
    repro = shop / ".repro"
    proc = None
    if plant == "stray-branch":
        git(shop, "branch", "repro/ghost")
    elif plant == "stray-ref":
        git(shop, "update-ref", "refs/repro/ghost/s1", "HEAD")
    elif plant == "stray-folder":
        (repro / "data" / "ghost").mkdir()
    elif plant == "half-copy":
        (repro / "snapshots" / "b1" / ".tmp-db").mkdir(parents=True)
    elif plant == "git-lock":
        (shop / ".git" / "index.lock").write_text("")
    elif plant == "prod-file":
        with open(shop / "data" / "shop.db", "r+b") as f:
            f.seek(200)
            f.write(b"\x01")
    elif plant == "prod-branch":
        git(shop, "commit", "-q", "--allow-empty", "-m", "moved")
    elif plant == "snapshot-bytes":
        f = next((repro / "snapshots" / "b1" / "s1" / "uploads").iterdir())
        os.chmod(f, 0o644)
        f.write_text("changed\n")
    elif plant == "lost-snapshot-data":
        import shutil

        shutil.rmtree(repro / "snapshots" / "b1" / "s1" / "db")
    elif plant == "stray-process":
        proc = subprocess.Popen(["sleep", "60"], cwd=repro / "envs" / "b1", start_new_session=True)
    try:
        with pytest.raises(AssertionError):
            checked.check()
    finally:
        if proc:
            proc.kill()
            proc.wait()
