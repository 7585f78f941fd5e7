"""Clones have owners, and an undo takes back only one's own reset.

Two engineers share a workspace: each runs the real command line as their own user
(``USER``/``LOGNAME``, what the journal records), on real clones and real services.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.tui_support import change_rows_elsewhere
from workbench.workspace import Workspace

ALICE = {"USER": "alice", "LOGNAME": "alice"}
BOB = {"USER": "bob", "LOGNAME": "bob"}


def as_user(who: dict[str, str], *args: str, cwd: Path, code: int = 0) -> subprocess.CompletedProcess:
    r = run_cli(*args, cwd=cwd, env=who)
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return r


def status_of(shop: Path, order: int) -> str:
    db = sqlite3.connect(shop / ".repro" / "data" / "b1" / "db" / "shop.db")
    try:
        return db.execute("SELECT status FROM orders WHERE id = ?", (order,)).fetchone()[0]
    finally:
        db.close()


def test_the_owner_is_the_user_who_forked_it(shop):
    as_user(ALICE, "fork", "prod", "b1", cwd=shop)
    as_user(BOB, "fork", "b1", "b2", cwd=shop)
    listed = as_user(BOB, "list", cwd=shop).stdout
    assert re.search(r"^b1\s.*\salice$", listed, re.M) and re.search(r"^b2\s.*\sbob$", listed, re.M), listed
    assert "by alice" in as_user(BOB, "status", "b1", cwd=shop).stdout
    assert json.loads(as_user(BOB, "status", "b2", "--json", cwd=shop).stdout)["owner"] == "bob"
    assert {e["name"]: e["owner"] for e in json.loads(as_user(BOB, "list", "--json", cwd=shop).stdout)} == \
        {"prod": None, "b1": "alice", "b2": "bob"}


def test_a_workspace_made_before_owners_gets_them_from_its_journal(shop):
    as_user(ALICE, "fork", "prod", "b1", cwd=shop)
    db = sqlite3.connect(shop / ".repro" / "state.db")          # as an older repro-tui left it
    db.execute("DROP INDEX journal_env")
    db.execute("ALTER TABLE envs DROP COLUMN owner")
    db.commit()
    db.close()
    assert json.loads(as_user(BOB, "status", "b1", "--json", cwd=shop).stdout)["owner"] == "alice"
    as_user(BOB, "fork", "prod", "b2", cwd=shop)                # and new clones record theirs
    assert json.loads(as_user(BOB, "status", "b2", "--json", cwd=shop).stdout)["owner"] == "bob"


def test_undo_takes_back_only_your_own_reset(shop):
    as_user(ALICE, "fork", "prod", "b1", cwd=shop)
    as_user(ALICE, "snapshot", "b1", "s1", cwd=shop)
    data = str(shop / ".repro" / "data" / "b1" / "db" / "shop.db")
    change_rows_elsewhere(data, "UPDATE orders SET status = 'alice' WHERE id = 1")
    as_user(ALICE, "reset", "b1", cwd=shop)                      # alice's reset: her change is kept for undo
    change_rows_elsewhere(data, "UPDATE orders SET status = 'bob' WHERE id = 2")
    as_user(BOB, "reset", "b1", "forked", cwd=shop)              # then bob resets the same clone
    refused = as_user(ALICE, "reset", "b1", "--undo", cwd=shop, code=1)
    message = refused.stderr
    assert "bob@" in message and "last to reset b1" in message, message
    assert re.search(r"at \d\d:\d\d:\d\d, \d+s ago", message), message           # who, and when
    assert "ask bob" in message and len(message.strip().splitlines()) <= 2
    assert status_of(shop, 2) == "paid"                          # bob's reset stands
    assert "(undo:" not in as_user(ALICE, "status", "b1", cwd=shop).stdout   # not offered to alice
    assert "by bob@" in as_user(ALICE, "status", "b1", cwd=shop).stdout
    as_user(BOB, "reset", "b1", "--undo", cwd=shop)              # bob's own undo works
    assert status_of(shop, 2) == "bob"
    as_user(BOB, "reset", "b1", "--undo", cwd=shop)              # and redoes it
    as_user(ALICE, "reset", "b1", "--undo", cwd=shop, code=1)    # bob's undo counts as his reset


def test_an_undo_asked_while_someone_else_resets_does_not_take_theirs_back(shop):
    """Alice's undo comes while Bob's reset holds the workspace: refused, not queued."""
    spec = shop / "repro.yaml"   # a service that takes a second to start: Bob's reset holds the lock that long
    spec.write_text(spec.read_text().replace("command: python -m http.server {port} --bind 127.0.0.1",
                                             "command: python -c \"import time, runpy, sys; time.sleep(1.5); "
                                             "sys.argv = ['http.server', '{port}', '--bind', '127.0.0.1']; "
                                             "runpy.run_module('http.server', run_name='__main__')\""))
    as_user(ALICE, "fork", "prod", "b1", cwd=shop)
    as_user(ALICE, "reset", "b1", cwd=shop)
    env = {**os.environ, "PYTHONPATH": str(ROOT), **BOB}
    bob = subprocess.Popen([sys.executable, "-m", "workbench", "reset", "b1"], cwd=shop, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ws = Workspace(shop)
        deadline = time.monotonic() + 20
        while not any(j.op == "reset" and j.user == "bob" for j in ws.journal("b1")):
            assert time.monotonic() < deadline, "bob's reset never started"
            time.sleep(0.02)
        ws.close()
        refused = as_user(ALICE, "reset", "b1", "--undo", cwd=shop, code=1)   # no undo ran
        assert "bob@" in refused.stderr
    finally:
        out, err = bob.communicate(timeout=60)
    assert bob.returncode == 0, err
    ws = Workspace(shop)
    try:
        assert [j.op for j in ws.journal("b1") if j.op != "prepare-ready"][:3] == ["reset", "reset", "fork"]
    finally:
        ws.close()


@pytest.mark.parametrize("who", [ALICE, BOB])
def test_anyone_may_reset_and_destroy_a_clone(shop, who):
    """Ownership is shown, not enforced: on call, whoever is awake resets the clone."""
    as_user(ALICE, "fork", "prod", "b1", cwd=shop)
    as_user(who, "reset", "b1", cwd=shop)
    as_user(who, "destroy", "b1", "--yes", cwd=shop)
