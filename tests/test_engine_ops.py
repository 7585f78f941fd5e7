"""The five operations on a real workspace: real git, real SQLite, real processes."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import git, run_cli
from workbench.errors import InvalidInput, NotFound, ProdReadOnly, Refused


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows(db: str, sql: str) -> list:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_fork_makes_a_running_isolated_clone(ws, shop):
    prod_db = shop / "data" / "shop.db"
    before = sha(prod_db)
    info = ws.fork("prod", "b1")
    assert info.kind == "clone" and info.state == "running" and info.branch == "repro/b1"
    assert info.worktree == shop / ".repro" / "envs" / "b1"
    assert git(shop, "rev-parse", "repro/b1") == git(shop, "rev-parse", "main")
    port = info.services["web"]["port"]
    prod_port = ws.status("prod").services["web"]["port"]
    assert port != prod_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/repro.yaml", timeout=5) as r:
        assert r.status == 200
    db = info.stores["db"]["location"]
    assert Path(db).is_relative_to(shop / ".repro" / "data" / "b1")
    assert rows(db, "select count(*) from orders") == [(200,)]
    # scrubbed: no original e-mail, same shape
    emails = [e for (e,) in rows(db, "select email from users")]
    assert not any("realmail.test" in e for e in emails)
    assert [s.name for s in info.snapshots] == ["forked"]
    assert sha(prod_db) == before
    assert [e.name for e in ws.list_envs()] == ["prod", "b1"]


def test_snapshot_reset_and_undo(ws, shop):
    ws.fork("prod", "b1")
    db = ws.status("b1").stores["db"]["location"]
    con = sqlite3.connect(db)
    con.execute("update orders set status='refunded' where id <= 10")
    con.commit()
    con.close()
    s1 = ws.snapshot("b1")
    assert s1.name == "s1"
    assert ws.snapshot("b1").name == "s2"
    with pytest.raises(Refused):
        ws.snapshot("b1", "s1")
    with pytest.raises(InvalidInput):
        ws.snapshot("b1", "forked")
    con = sqlite3.connect(db)
    con.execute("delete from orders")
    con.commit()
    con.close()
    ws.reset("b1", "s1")
    assert rows(db, "select count(*) from orders where status='refunded'") == [(10,)]
    assert ws.status("b1").state == "running"  # services restarted
    ws.reset("b1", "forked")
    assert rows(db, "select count(*) from orders where status='refunded'") == [(0,)]
    ws.undo_reset("b1")
    assert rows(db, "select count(*) from orders where status='refunded'") == [(10,)]
    ws.undo_reset("b1")  # undo of the undo: redo
    assert rows(db, "select count(*) from orders where status='refunded'") == [(0,)]
    # the default target is the latest snapshot
    assert ws.reset("b1").name == "s2"
    entry = next(e for e in ws.journal("b1", 5) if e.op == "reset")
    assert entry.outcome == "ok"
    assert any(s["step"] == "data swapped" for s in entry.steps)


def test_reset_keeps_the_worktree_unless_code(ws, shop):
    info = ws.fork("prod", "b1")
    cfg = info.worktree / "config" / "app.yaml"
    cfg.write_text("feature:\n  rounding: round\n")
    ws.snapshot("b1", "fixed")
    cfg.write_text("feature:\n  rounding: ceil\n")
    ws.reset("b1", "forked")
    assert "ceil" in cfg.read_text()
    ws.reset("b1", "fixed", code=True)
    assert "round\n" in cfg.read_text()
    ws.reset("b1", "forked", code=True)
    assert "floor" in cfg.read_text()


def test_snapshot_delete_and_sizes(ws):
    ws.fork("prod", "b1")
    ws.snapshot("b1", "before")
    snaps = ws.snapshots("b1")
    assert [s.name for s in snaps] == ["forked", "before"]
    assert all(s.size > 0 for s in snaps)
    ws.delete_snapshot("b1", "before")
    assert [s.name for s in ws.snapshots("b1")] == ["forked"]
    with pytest.raises(Refused):
        ws.delete_snapshot("b1", "forked")
    with pytest.raises(NotFound):
        ws.delete_snapshot("b1", "nope")


def test_fork_of_a_clone_and_of_a_snapshot(ws):
    a = ws.fork("prod", "a1")
    db = a.stores["db"]["location"]
    con = sqlite3.connect(db)
    con.execute("update users set name='Changed' where id=1")
    con.commit()
    con.close()
    (a.worktree / "config" / "app.yaml").write_text("feature:\n  rounding: round\n")
    b = ws.fork("a1", "b1")
    assert rows(b.stores["db"]["location"], "select name from users where id=1") == [("Changed",)]
    assert "round" in (b.worktree / "config" / "app.yaml").read_text()
    c = ws.fork("a1@forked", "c1")
    assert rows(c.stores["db"]["location"], "select name from users where id=1") != [("Changed",)]
    assert "floor" in (c.worktree / "config" / "app.yaml").read_text()
    # not scrubbed twice: the same fake e-mails as the source
    assert rows(c.stores["db"]["location"], "select email from users order by id") == \
        rows(db, "select email from users order by id")


def test_promote_commits_with_trailers_and_merges(ws, shop):
    info = ws.fork("prod", "b1")
    ws.snapshot("b1", "s1")
    ws.reset("b1", "forked")
    (info.worktree / "config" / "app.yaml").write_text("feature:\n  rounding: round\ncurrency: EUR\n")
    files, diff = ws.promote_preview("b1")
    assert files == ["config/app.yaml"] and "+  rounding: round" in diff
    result = ws.promote("b1", "Round discounts instead of flooring them", merge=True)
    body = git(shop, "log", "-1", "--format=%B", "repro/b1")
    assert "Repro-Environment: b1" in body
    assert f"Repro-Forked-From: {info.forked_commit}" in body
    assert "Repro-Snapshot: b1@forked" in body  # the snapshot last reset to
    assert result.merged_into == "main"
    assert "rounding: round" in (shop / "config" / "app.yaml").read_text()
    with pytest.raises(Refused, match="nothing to promote"):
        ws.promote("b1", "again")


def test_promote_refuses_conflicts_and_dirty_prod(ws, shop):
    info = ws.fork("prod", "b1")
    (info.worktree / "config" / "app.yaml").write_text("feature:\n  rounding: round\n")
    (shop / "config" / "app.yaml").write_text("feature:\n  rounding: ceil\n")
    with pytest.raises(Refused, match="uncommitted"):
        ws.promote("b1", "fix", merge=True)
    git(shop, "commit", "-qam", "prod moved")
    with pytest.raises(Refused, match="config/app.yaml"):
        ws.promote("b1", "fix", merge=True)
    assert git(shop, "status", "--porcelain") == ""
    assert "ceil" in (shop / "config" / "app.yaml").read_text()


def test_promote_without_identity_says_how(ws, shop, monkeypatch, tmp_path):
    info = ws.fork("prod", "b1")
    (info.worktree / "config" / "app.yaml").write_text("x: 1\n")
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    git(shop, "config", "--unset", "user.name") if git_has(shop, "user.name") else None
    with pytest.raises(Refused, match="who you are") as exc:
        ws.promote("b1", "fix")
    assert "git config --global user.name" in exc.value.hint


def git_has(root: Path, key: str) -> bool:
    import subprocess

    return subprocess.run(["git", "config", "--local", key], cwd=root, capture_output=True).returncode == 0


def test_destroy_leaves_nothing(ws, shop):
    info = ws.fork("prod", "b1")
    pid = info.services["web"]["pid"]
    ws.snapshot("b1")
    (info.worktree / "new.txt").write_text("work in progress")
    with pytest.raises(Refused, match="uncommitted"):
        ws.destroy("b1")
    ws.destroy("b1", force=True)
    assert [e.name for e in ws.list_envs()] == ["prod"]
    assert not (shop / ".repro" / "envs" / "b1").exists()
    for sub in ("data", "snapshots", "ready", "undo", "run"):
        assert not (shop / ".repro" / sub / "b1").exists(), sub
    assert "repro/b1" not in git(shop, "branch", "--list")
    assert git(shop, "for-each-ref", "refs/repro/") == ""
    assert not Path(f"/proc/{pid}").exists()
    # (by path: a commit's short hash in the listing may hold "b1")
    assert [line for line in git(shop, "worktree", "list", "--porcelain").splitlines()
            if line.startswith("worktree ")] == [f"worktree {shop}"]


def test_destroy_keeps_a_branch_with_unmerged_commits(ws, shop):
    info = ws.fork("prod", "b1")
    (info.worktree / "config" / "app.yaml").write_text("x: 1\n")
    ws.promote("b1", "fix")
    notes = ws.destroy("b1")
    assert "repro/b1" in git(shop, "branch", "--list") and "kept the branch" in notes[0]


def test_prod_is_read_only(ws, shop):
    db = shop / "data" / "shop.db"
    before = sha(db)
    for call in (lambda: ws.snapshot("prod"), lambda: ws.reset("prod"), lambda: ws.undo_reset("prod"),
                 lambda: ws.promote("prod", "x"), lambda: ws.destroy("prod", force=True),
                 lambda: ws.delete_snapshot("prod", "s1")):
        with pytest.raises(ProdReadOnly):
            call()
    ws.fork("prod", "b1")
    ws.snapshot("b1")
    ws.reset("b1")
    ws.destroy("b1", force=True)
    assert sha(db) == before
    assert git(shop, "status", "--porcelain") == ""


def test_names_are_checked(ws):
    for bad in ("B1", "1b", "a/b", "..", "a b", "-x", "a" * 33, "", "a_b"):
        with pytest.raises(InvalidInput):
            ws.fork("prod", bad)
    with pytest.raises(InvalidInput):
        ws.fork("prod", "prod")
    with pytest.raises(NotFound):
        ws.fork("nope", "b1")
    ws.fork("prod", "b1")
    with pytest.raises(Refused, match="exists"):
        ws.fork("prod", "b1")


def test_cli_json_shapes_and_exit_codes(shop):
    r = run_cli("--json", "fork", "prod", "b1", cwd=shop)
    assert r.returncode == 0, r.stderr
    r = run_cli("list", "--json", cwd=shop)
    envs = json.loads(r.stdout)
    assert [(e["name"], e["kind"]) for e in envs] == [("prod", "prod"), ("b1", "clone")]
    assert all("state" in e for e in envs)
    st = json.loads(run_cli("status", "b1", "--json", cwd=shop).stdout)
    assert st["worktree"] == str(shop / ".repro" / "envs" / "b1")
    assert st["services"]["web"]["state"] == "running" and st["services"]["web"]["pid"] > 0
    assert st["stores"]["db"] == {"type": "sqlite", "location": str(shop / ".repro/data/b1/db/shop.db")}
    assert [s["name"] for s in st["snapshots"]] == ["forked"]
    # errors: 1 for a refusal, 2 for bad input, JSON error object with --json
    r = run_cli("reset", "prod", "--json", cwd=shop)
    assert r.returncode == 1 and json.loads(r.stdout)["error"]["code"] == 1
    assert "read-only" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("fork", "prod", "Bad/Name", cwd=shop)
    assert r.returncode == 2 and "invalid environment name" in r.stderr
    r = run_cli("status", "nope", cwd=shop)
    assert r.returncode == 1 and "no environment named 'nope'" in r.stderr
    r = run_cli("frobnicate", cwd=shop)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = run_cli("destroy", "b1", cwd=shop, input="")
    assert r.returncode == 2 and "--yes" in r.stderr
    r = run_cli("-w", str(shop), "destroy", "b1", "--yes", "--json", cwd=shop.parent)
    assert r.returncode == 0 and json.loads(r.stdout)["destroyed"] == "b1"


def test_workspace_found_from_inside_a_clone(shop):
    assert run_cli("fork", "prod", "b1", cwd=shop).returncode == 0
    r = run_cli("list", "--json", cwd=shop / ".repro" / "envs" / "b1" / "config")
    assert r.returncode == 0, r.stderr
    assert [e["name"] for e in json.loads(r.stdout)] == ["prod", "b1"]
    r = run_cli("list", cwd=shop.parent)
    assert r.returncode == 1 and "no workspace here" in r.stderr


def test_broken_repro_yaml_names_line_and_column(shop):
    (shop / "repro.yaml").write_text("name: shop\nservices:\n  web:\n    comand: x\n")
    r = run_cli("list", cwd=shop)
    assert r.returncode == 2
    assert "repro.yaml:4:5" in r.stderr and "Did you mean 'command'" in r.stderr
    (shop / "repro.yaml").write_text("name: shop\nservices: [\n")
    r = run_cli("list", cwd=shop)
    assert r.returncode == 2 and "repro.yaml:" in r.stderr and "not valid YAML" in r.stderr


def test_logs_and_shell_env(ws, shop):
    ws.fork("prod", "b1")
    lines = list(ws.logs("b1"))
    assert any("starting web in b1" in line for line in lines)
    env = ws.shell_env("b1")
    assert env["SMTP_HOST"] == "127.0.0.1:1025"
    assert env["REPRO_STORE_DB"].endswith(".repro/data/b1/db/shop.db")
    assert env["REPRO_WORKTREE"] == str(shop / ".repro" / "envs" / "b1")


def test_repro_dir_is_git_excluded_not_gitignored(ws, shop):
    assert (shop / ".gitignore").read_text() == "data/\n"
    assert "/.repro/" in (shop / ".git" / "info" / "exclude").read_text()
    ws.fork("prod", "b1")
    assert git(shop, "status", "--porcelain") == ""


def test_stores_refuse_to_write_prod_whatever_the_caller(ws, shop):
    """The last line of defence: a store's writing methods refuse prod even if the engine asked."""
    before = sha(shop / "data" / "shop.db")
    calls = [lambda s: s.fork("prod", None, None, []), lambda s: s.snapshot("prod", "s1"),
             lambda s: s.reset("prod", "s1", "x"), lambda s: s.destroy("prod"),
             lambda s: s.undo_reset("prod"), lambda s: s.make_ready("prod", "s1", "x")]
    for store in ws.stores.values():
        for call in calls:
            with pytest.raises(ProdReadOnly):
                call(store)
    assert sha(shop / "data" / "shop.db") == before
