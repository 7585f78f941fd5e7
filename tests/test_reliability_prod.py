"""Prod is read-only: every write path — each write command of the CLI, each engine call the
screen makes, each key of the screen — tried against prod, with prod running on a WAL-mode
database: all refused, and prod's files, branch, refs and data unchanged to the byte.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.conftest import git, run_cli
from tests.test_reliability_checks import Invariants, journal_rows
from workbench.errors import InvalidInput, Refused

# every write command of the CLI, aimed at prod
WRITES = [
    ("snapshot", "prod"),
    ("snapshot", "prod", "s9"),
    ("snapshot", "prod", "--delete", "forked"),
    ("snapshot", "prod", "--delete", "s1"),
    ("reset", "prod"),
    ("reset", "prod", "forked"),
    ("reset", "prod", "forked", "--code"),
    ("reset", "prod", "--undo"),
    ("promote", "prod", "-m", "Fix"),
    ("promote", "prod", "-m", "Fix", "--merge"),
    ("destroy", "prod", "--yes"),
    ("destroy", "prod", "--yes", "--force"),
    ("destroy", "prod"),
    ("fork", "prod", "prod"),
    ("fork", "b1", "prod"),
    ("fork", "b1@forked", "prod"),
]


@pytest.fixture
def running_prod(ws, shop):
    """prod's database in WAL mode, prod's service running (the demo runs its own prod),
    a clone b1 with a change, and a baseline of everything prod has."""
    con = sqlite3.connect(shop / "data" / "shop.db")
    con.execute("PRAGMA journal_mode=WAL")
    con.close()
    ws.start("prod")
    ws.fork("prod", "b1")
    (shop / ".repro" / "envs" / "b1" / "config" / "app.yaml").write_text("currency: USD\n")
    ws.close()
    inv = Invariants.record(shop)
    refs = _prod_refs(shop)
    data_files = sorted(p.name for p in (shop / "data").iterdir())
    yield inv, refs, data_files


def _prod_refs(shop) -> list[str]:
    """Every git ref but the clones' own (their branches and snapshot refs)."""
    out = git(shop, "for-each-ref", "--format=%(refname) %(objectname)").splitlines()
    return [r for r in out if not r.startswith(("refs/heads/repro/", "refs/repro/"))]


def _assert_prod_untouched(shop, inv, refs, data_files) -> None:
    inv.check_prod()
    assert _prod_refs(shop) == refs
    assert sorted(p.name for p in (shop / "data").iterdir()) == data_files  # no -wal/-shm made beside it
    for sub in ("envs", "data", "snapshots", "ready", "undo"):
        assert not (shop / ".repro" / sub / "prod").exists()


def test_every_write_command_refuses_prod(running_prod, shop):
    inv, refs, data_files = running_prod
    journal_before = len(journal_rows(shop))
    for argv in WRITES:
        r = run_cli(*argv, "--json", cwd=shop, input="")
        assert r.returncode in (1, 2), (argv, r.returncode, r.stderr)
        assert "Traceback" not in r.stderr and "This is a bug" not in r.stderr, r.stderr
        text = r.stderr.lower()
        assert "prod" in text and any(w in text for w in ("read-only", "reserved", "confirmation")), (argv, r.stderr)
        assert json.loads(r.stdout)["error"]["code"] == r.returncode
    assert len(journal_rows(shop)) == journal_before, "a refused request reached the journal"
    _assert_prod_untouched(shop, inv, refs, data_files)


def test_reading_prod_while_it_runs_writes_nothing(running_prod, shop):
    """Readers, and forks, read prod's running WAL database: not a byte of it changes, and no
    companion file is left beside it."""
    inv, refs, data_files = running_prod
    for argv in (("list",), ("status", "prod"), ("diff", "prod", "b1"), ("diff", "prod", "b1", "--json"),
                 ("diff", "b1", "prod", "--include-scrubbed"), ("logs", "prod"), ("snapshots", "prod"),
                 ("fork", "prod", "b2"), ("fork", "b1", "b3"), ("snapshot", "b2"), ("reset", "b2"),
                 ("promote", "b1", "-m", "Use dollars"), ("destroy", "b3", "--yes", "--force")):
        r = run_cli(*argv, cwd=shop)
        assert r.returncode == 0, (argv, r.stderr)
    _assert_prod_untouched(shop, inv, refs, data_files)


def test_every_engine_call_of_the_screen_refuses_prod(running_prod, shop):
    from workbench.workspace import Workspace

    inv, refs, data_files = running_prod
    ws = Workspace(shop)
    calls = [
        lambda: ws.snapshot("prod"),
        lambda: ws.snapshot("prod", "s9"),
        lambda: ws.delete_snapshot("prod", "forked"),
        lambda: ws.reset("prod"),
        lambda: ws.reset("prod", "forked", code=True),
        lambda: ws.undo_reset("prod"),
        lambda: ws.promote("prod", "Fix"),
        lambda: ws.promote("prod", "Fix", merge=True),
        lambda: ws.promote_preview("prod"),
        lambda: ws.destroy("prod"),
        lambda: ws.destroy("prod", force=True),
        lambda: ws.fork("prod", "prod"),
        lambda: ws.fork("b1", "prod"),
    ]
    try:
        for call in calls:
            with pytest.raises((Refused, InvalidInput)) as err:
                call()
            assert "prod" in str(err.value)
        assert ws.snapshots("prod") == []
    finally:
        ws.close()
    _assert_prod_untouched(shop, inv, refs, data_files)


def test_every_key_of_the_screen_that_changes_something_is_refused_on_prod():
    """The screen asks one pure function which keys apply: every changing key but fork (and
    start/stop of the local prod, which the demo runs) is refused when prod is selected."""
    from workbench.tui.availability import CHANGES, CLONE_ONLY, Situation, refusal

    prod = Situation(selected="prod", kind="prod", state="running", can_undo_reset=True)
    for action in sorted(CHANGES | set(CLONE_ONLY)):
        if action in ("fork", "start_stop_prod", "restart"):   # prod's services: after typing prod (a dialog)
            assert refusal(action, prod) is None
        elif action == "start_stop":                           # the clones' x: prod's is the row that asks
            assert "type prod" in str(refusal(action, prod))
        else:
            assert refusal(action, prod) and "read-only" in refusal(action, prod), action
    docker_prod = Situation(selected="prod", kind="prod", backend="docker")
    assert refusal("start_stop", docker_prod)
