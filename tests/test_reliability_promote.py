"""Promote safety: prod's branch moved since the fork — --merge merges cleanly, or refuses
naming the conflicting files and leaves prod exactly as it was; a promote never commits
data files or .repro/, whatever the clone's .gitignore says.
"""

from __future__ import annotations

import hashlib
import shutil

import pytest

from tests.conftest import git, run_cli
from tests.test_reliability_checks import Invariants


@pytest.fixture
def forked(ws, shop):
    ws.fork("prod", "b1")
    ws.close()
    return shop, shop / ".repro" / "envs" / "b1"


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _prod_commit(shop, path: str, text: str, message: str) -> None:
    (shop / path).write_text(text)
    git(shop, "commit", "-q", "-am", message)


def test_merge_after_prod_moved_on_merges_cleanly(forked):
    shop, wt = forked
    _prod_commit(shop, ".gitignore", "data/\n*.tmp\n", "Ignore temporary files")
    (wt / "config" / "app.yaml").write_text("# shop settings\nfeature:\n  rounding: ceil\ncurrency: EUR\n")
    inv = Invariants.record(shop)
    main_before = git(shop, "rev-parse", "main")
    r = run_cli("promote", "b1", "-m", "Round up", "--merge", cwd=shop)
    assert r.returncode == 0, r.stderr
    assert "merged into main" in r.stdout
    parents = git(shop, "rev-list", "--parents", "-n", "1", "main").split()[1:]
    assert parents == [main_before, git(shop, "rev-parse", "repro/b1")]
    assert "rounding: ceil" in (shop / "config" / "app.yaml").read_text()
    assert "*.tmp" in (shop / ".gitignore").read_text()
    changed = {k for k, v in inv.prod_files.items() if v != _sha(shop / k)}
    assert changed == {"config/app.yaml"}, changed  # the merge, and nothing else (data untouched)
    inv.refresh_prod()
    assert inv.check() == ["b1"]


def test_merge_that_conflicts_is_refused_naming_the_files_and_prod_is_untouched(forked):
    shop, wt = forked
    _prod_commit(shop, "config/app.yaml", "# shop settings\nfeature:\n  rounding: half-up\ncurrency: EUR\n",
                 "Round half up")
    (wt / "config" / "app.yaml").write_text("# shop settings\nfeature:\n  rounding: ceil\ncurrency: USD\n")
    (wt / "notes.md").write_text("why\n")
    inv = Invariants.record(shop)
    r = run_cli("promote", "b1", "-m", "Round up", "--merge", cwd=shop)
    assert r.returncode == 1, r.stderr
    assert "config/app.yaml" in r.stderr and "conflict" in r.stderr and "notes.md" not in r.stderr
    assert "Traceback" not in r.stderr
    inv.check()  # prod's branch, checkout and data as they were; no MERGE_HEAD; no lock file
    assert not (shop / ".git" / "MERGE_HEAD").exists()
    # the fix is kept, committed on the clone's branch, for a merge by hand
    assert git(shop, "rev-list", "--count", "main..repro/b1") == "1"
    assert git(wt, "status", "--porcelain") == ""


def test_merge_without_prod_moving_fast_forwards(forked):
    shop, wt = forked
    (wt / "config" / "app.yaml").write_text("currency: USD\n")
    r = run_cli("promote", "b1", "-m", "Dollars", "--merge", cwd=shop)
    assert r.returncode == 0, r.stderr
    assert git(shop, "rev-parse", "main") == git(shop, "rev-parse", "repro/b1")
    assert (shop / "config" / "app.yaml").read_text() == "currency: USD\n"
    assert git(shop, "status", "--porcelain") == ""


@pytest.mark.parametrize("situation", ["dirty", "other-branch"])
def test_merge_into_a_prod_checkout_that_is_not_ready_is_refused_before_anything(forked, situation):
    shop, wt = forked
    (wt / "config" / "app.yaml").write_text("currency: USD\n")
    if situation == "dirty":
        (shop / "config" / "app.yaml").write_text("currency: GBP\n")  # someone's work in progress in prod
    else:
        git(shop, "checkout", "-q", "-b", "hotfix")
    before = {"main": git(shop, "rev-parse", "main"), "b1": git(shop, "rev-parse", "repro/b1"),
              "file": (shop / "config" / "app.yaml").read_text(), "status": git(shop, "status", "--porcelain")}
    r = run_cli("promote", "b1", "-m", "Dollars", "--merge", cwd=shop)
    assert r.returncode == 1, r.stderr
    assert ("uncommitted changes" if situation == "dirty" else "not on main") in r.stderr
    after = {"main": git(shop, "rev-parse", "main"), "b1": git(shop, "rev-parse", "repro/b1"),
             "file": (shop / "config" / "app.yaml").read_text(), "status": git(shop, "status", "--porcelain")}
    assert after == before, "a refused merge changed something"
    assert git(wt, "status", "--porcelain") == "M config/app.yaml"  # the fix is still there, uncommitted


def test_a_promote_commits_code_and_config_but_never_data_or_repro_folders(forked):
    shop, wt = forked
    (wt / "config" / "app.yaml").write_text("currency: USD\n")
    # what lies around a worktree: ignored data, a .repro folder (excluded), a scratch file
    (wt / "data").mkdir(exist_ok=True)
    shutil.copy(shop / "data" / "shop.db", wt / "data" / "shop.db")
    (wt / ".repro").mkdir()
    (wt / ".repro" / "state.db").write_bytes(b"state")
    r = run_cli("promote", "b1", "-m", "Dollars", cwd=shop)
    assert r.returncode == 0, r.stderr
    files = git(shop, "show", "--name-only", "--format=", "repro/b1").split()
    assert files == ["config/app.yaml"]
    tree = git(shop, "ls-tree", "-r", "--name-only", "repro/b1").split()
    assert not [f for f in tree if f.startswith((".repro/", "data/"))]


@pytest.mark.parametrize("unignored", ["data", ".repro"])
def test_a_promote_refuses_data_or_repro_files_that_the_clone_unignored(forked, unignored):
    """A clone's .gitignore may be changed to let data (or .repro/) through: the promote
    refuses to commit it, and commits nothing at all."""
    shop, wt = forked
    head, main = git(shop, "rev-parse", "repro/b1"), git(shop, "rev-parse", "main")
    if unignored == "data":
        (wt / ".gitignore").write_text("# data no longer ignored\n")
        (wt / "data").mkdir(exist_ok=True)
        shutil.copy(shop / "data" / "shop.db", wt / "data" / "shop.db")
        bad = "data/shop.db"
    else:
        (wt / ".gitignore").write_text("data/\n!/.repro/\n")
        (wt / ".repro").mkdir()
        (wt / ".repro" / "state.db").write_bytes(b"state")
        bad = ".repro/state.db"
    r = run_cli("promote", "b1", "-m", "Oops", cwd=shop)
    assert r.returncode == 1 and "refusing to commit data files" in r.stderr and bad in r.stderr, r.stderr
    assert git(shop, "rev-parse", "repro/b1") == head
    assert git(shop, "rev-parse", "main") == main
    assert git(wt, "status", "--porcelain")  # nothing was committed: the changes are all still there
