"""The screen's pure parts: words and symbols, keymaps, which keys apply. No terminal needed."""

from __future__ import annotations

import time
from array import array
from pathlib import Path

import pytest

from workbench.diff.model import Change, DiffReport, GroupSummary
from workbench.model import EnvInfo, JournalEntry, SnapshotInfo
from workbench.tui import presentation as p
from workbench.tui.availability import Situation, refusal
from workbench.tui.keymap import KEY_IDS, KEYS, effective_keys, key_display, load_keymap

NOW = 1_700_000_000.0


def test_every_state_has_a_symbol_and_a_word():
    for state in ("running", "stopped", "partial", "crashed", "pending", "ready", "broken"):
        label = p.state_label(state)
        symbol, word = label.split(" ", 1)
        assert word == state and symbol != "?" and not symbol.isalnum()
    # states must stay distinguishable without colour
    assert len({p.state_symbol(s) for s in ("running", "stopped", "partial", "crashed", "pending")}) == 5


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59, "59s"), (61, "1m"), (7200, "2h"), (3 * 86400, "3d")])
def test_age(seconds, text):
    assert p.age(NOW - seconds, NOW) == text


def test_age_of_nothing_and_of_the_future():
    assert p.age(None, NOW) == "-"
    assert p.age(NOW + 50, NOW) == "0s"


@pytest.mark.parametrize(("seconds", "text"), [(0.085, "85 ms"), (1.23, "1.2 s"), (125, "2m 05s"), (None, "…")])
def test_duration(seconds, text):
    assert p.duration(seconds) == text


def test_env_line_shows_name_state_branch_age_snapshots_and_ports():
    snaps = [SnapshotInfo("b1", n, n, NOW - 60, None, False) for n in ("forked", "s1")]
    env = EnvInfo(name="b1", kind="clone", state="running", branch="repro/b1", worktree=Path("."),
                  created_at=NOW - 7200, services={"web": {"state": "running", "port": 8123}}, snapshots=snaps)
    line = p.env_line(env, NOW)
    assert line.first == "● b1" and line.state == "running" and line.age == "2h"
    assert line.second == "repro/b1  2 snaps  :8123"
    assert p.env_line(env, NOW, mask=True).ports == ":····"
    busy = p.env_line(env, NOW, busy="reset")
    assert busy.state == "reset" and busy.symbol == "⟳"


def test_journal_line_says_what_happened_and_how_long_it_took():
    entry = JournalEntry(id=1, op="fork", env="b1", args={}, started_at=NOW - 120, finished_at=NOW - 118.6,
                         outcome="ok", message=None, user="u", host="h",
                         steps=[{"step": "worktree", "seconds": 0.2}, {"step": "copy db + scrub", "seconds": 1.1}])
    assert p.journal_line(entry, NOW) == "  2m ago  ✓ fork b1  1.4 s  slowest: copy db + scrub 1.1 s"
    failed = JournalEntry(id=2, op="reset", env="b1", args={}, started_at=NOW - 5, finished_at=NOW - 4,
                          outcome="rolled-back", message="disk full\nmore", user="u", host="h")
    assert p.journal_line(failed, NOW) == " <1m ago  ↶ reset b1 rolled-back  1.0 s  disk full"
    assert p.journal_line(failed, NOW, me="u@h") == p.journal_line(failed, NOW)
    assert "↶ reset b1 (by u) rolled-back" in p.journal_line(failed, NOW, me="alice@h")   # someone else's


def test_values_are_one_line_and_bounded():
    assert p.value_text(None) == "∅"
    assert p.value_text("") == "''"           # not to be confused with NULL
    assert p.value_text("a\nb") == "a⏎b"
    assert p.value_text(b"\x00\x01" * 10).startswith("<20 bytes 0001")
    assert len(p.value_text("x" * 500, 60)) == 60
    assert p.value_text("Zoë 東京") == "Zoë 東京"


def test_change_cells_for_each_section():
    config = Change("config", "config/app.yaml:feature.rounding", "changed", "floor", "round")
    assert p.change_cells(config, "config") == ("~", "config/app.yaml:feature.rounding", "floor → round", "")
    override = Change("services", "services.web.env.SMTP_HOST", "changed", "smtp.example.com", "127.0.0.1:1025",
                      intent="override")
    assert p.change_cells(override, "services")[-1] == "(override)"
    row = Change("data", "db.orders[1042].status", "changed", "paid", "refunded", store="db", table="orders",
                 key=[1042], column="status")
    assert p.change_cells(row, "data") == ("~", "1042", "status", "paid → refunded", "")
    added = Change("data", "db.orders[7]", "added", None, {"id": 7, "status": "new"}, store="db", table="orders",
                   key=[7])
    assert p.change_cells(added, "data") == ("+", "7", "(row)", "id=7, status=new", "")
    assert "refunded" in p.change_detail(row) and "paid" in p.change_detail(row)
    scrub = Change("data", "db.users.email", "changed", intent="scrub", store="db", table="users", column="email")
    assert p.change_cells(scrub, "data") == ("~", "(all rows)", "email", "(masked in the clone)", "(scrub)")
    schema = Change("data", "db.orders.note", "added", None, "TEXT", store="db", table="orders", column="note",
                    schema=True)
    assert p.change_cells(schema, "data") == ("+", "(schema)", "note", "TEXT", "(schema)")
    file = Change("data", "uploads:invoice-1.txt", "changed", "a1", "b2", store="uploads", key=["invoice-1.txt"])
    assert p.change_cells(file, "data")[1:3] == ("invoice-1.txt", "")
    dup = Change("data", "db.log", "added", None, {"msg": "x"}, store="db", table="log", count=3)
    assert p.change_cells(dup, "data")[1:4] == ("(no key)", "(row)", "msg=x ×3")
    text = Change("config", "config/notes.txt", "changed", lines=["--- a", "+++ b", "-old", "+new"])
    assert p.change_cells(text, "config")[2] == "(text differs: 2 lines)"


def test_filter_matches_path_and_values_case_insensitively():
    row = Change("data", "db.orders[1042].status", "changed", "paid", "Refunded", store="db", table="orders",
                 key=[1042], column="status")
    assert p.matches(row, "ORDERS") and p.matches(row, "refund") and p.matches(row, "")
    assert not p.matches(row, "users")


def _report(rows: int = 3) -> DiffReport:
    report = DiffReport(left="prod", right="b1")
    report.config.append(Change("config", "config/app.yaml:feature.rounding", "changed", "floor", "round"))
    report.services.append(Change("services", "services.web.env.SMTP_HOST", "changed", "a", "b", intent="override"))
    report.services.append(Change("services", "services.web.pid", "changed", 1, 2, runtime=True))
    report.data.append(Change("data", "db.users.email", "changed", None, None, intent="scrub", store="db",
                              table="users", column="email"))
    for i in range(rows):
        report.data.append(Change("data", f"db.orders[{i}].status", "changed", "paid", "refunded", store="db",
                                  table="orders", key=[i], column="status"))
    report.groups.append(GroupSummary("data", "db.orders", shown=rows, more=5))
    return report


def test_views_hide_intended_changes_and_runtime_facts_until_asked():
    report = _report()
    hidden = p.build_views(report, show_intended=False)
    assert list(hidden.sections["config"]) == [0]
    assert list(hidden.sections["services"]) == []
    assert hidden.counts == {"config": (1, 0, 0), "services": (0, 1, 0), "data": (3, 1, 5)}
    assert [(g.store, g.table) for g in hidden.groups] == [("db", "users"), ("db", "orders")]
    assert [len(v) for v in hidden.group_views] == [0, 3]
    shown = p.build_views(report, show_intended=True)
    assert list(shown.sections["services"]) == [0, 1]
    assert [len(v) for v in shown.group_views] == [1, 3]
    filtered = p.build_views(report, show_intended=True, needle="[1]")
    assert [len(v) for v in filtered.group_views] == [0, 1]


def test_tab_labels_count_unexpected_then_intended():
    assert p.tab_label("Config", 3) == "Config 3"
    assert p.tab_label("Services", 0, 2) == "Services 0 +2"
    assert p.tab_label("Data", 100, 1, more=5) == "Data 100… +1"
    assert p.table_line(p.group_data(_report().data)[1], 3, 5) == "db › orders  3 (+5 more)"


def test_many_changes_group_and_show_without_copying_them():
    changes = [Change("data", f"db.t[{i}].v", "changed", i, i + 1, store="db", table="t", key=[i], column="v")
               for i in range(200_000)]
    report = DiffReport(left="prod", right="b1", data=changes)
    t0 = time.perf_counter()
    views = p.build_views(report, show_intended=True)
    assert time.perf_counter() - t0 < 2
    assert isinstance(views.group_views[0], array) and len(views.group_views[0]) == 200_000


# --- keys -------------------------------------------------------------------------------

def test_every_key_of_the_issue_is_bound_once_with_an_id_and_a_description():
    keys = {k.key: k for k in KEYS}
    for key in ("f", "s", "r", "z", "R", "p", "d", "x", "l", "c", "slash", "u", "1", "2", "3", "tab",
                "question_mark", "q"):
        assert key in keys, key
        assert keys[key].id and keys[key].description and keys[key].help
    assert len(KEY_IDS) == len(KEYS)


def test_keymap_file_remaps_by_id_and_reports_problems(tmp_path):
    path = tmp_path / "keymap.toml"
    path.write_text('fork = "n"\nreset = "r, ctrl+r"\nnope = "x"\nquit = 3\n')
    keymap, problems = load_keymap(path)
    assert keymap == {"fork": "n", "reset": "r,ctrl+r"}
    assert len(problems) == 2 and "nope" in problems[0] and "quit" in problems[1]
    assert dict((k.id, keys) for k, keys in effective_keys(keymap))["fork"] == "n"
    assert key_display("question_mark") == "?"


def test_broken_keymap_file_falls_back_to_the_defaults(tmp_path):
    path = tmp_path / "keymap.toml"
    path.write_text("fork = \n")
    keymap, problems = load_keymap(path)
    assert keymap == {} and "default keys apply" in problems[0]
    assert load_keymap(tmp_path / "missing.toml") == ({}, [])


# --- which keys apply --------------------------------------------------------------------

def test_prod_refuses_every_change_but_fork_and_its_own_start_and_stop():
    prod = Situation(selected="prod", kind="prod", state="running")
    for action in ("snapshot", "reset", "undo_reset", "choose_snapshot", "promote", "destroy", "compare"):
        assert "prod is read-only" in refusal(action, prod)
    for action in ("fork", "start_stop_prod", "restart", "logs", "help", "filter", "toggle_intended"):
        assert refusal(action, prod) is None
    assert "type prod" in refusal("start_stop", prod)          # x for prod is the row that asks first
    docker = Situation("prod", "prod", backend="docker")
    for action in ("start_stop", "start_stop_prod", "restart"):
        assert refusal(action, docker) == "prod's containers are never started or stopped by repro-tui."
    clone = Situation(selected="b1", kind="clone", state="running")
    assert refusal("start_stop", clone) is None and refusal("start_stop_prod", clone) is not None


def test_undo_of_someone_elses_reset_is_refused_with_who_and_when():
    from workbench.owners import undo_refusal

    now = 1_767_225_600.0
    theirs = undo_refusal("b1", "bob@jump", now - 125, now, mine="alice@jump")
    assert theirs is not None and "bob@jump was the last to reset b1" in theirs.message
    assert "2m ago" in theirs.message and "ask bob" in str(theirs.hint)
    assert undo_refusal("b1", "alice@jump", now - 125, now, mine="alice@jump") is None
    assert undo_refusal("b1", None, None, now, mine="alice@jump") is None
    clone = Situation("b1", "clone", "running", can_undo_reset=True, undo_refusal=theirs.message)
    assert refusal("undo_reset", clone) == theirs.message


def test_undo_needs_a_reset_and_changes_wait_for_each_other():
    clone = Situation(selected="b1", kind="clone", state="running")
    assert "no reset to undo" in refusal("undo_reset", clone)
    assert refusal("undo_reset", Situation("b1", "clone", "running", can_undo_reset=True)) is None
    busy = Situation("b1", "clone", "running", busy="fork b2")
    assert "wait: fork b2" in refusal("reset", busy)
    assert refusal("filter", busy) is None
