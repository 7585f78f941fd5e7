"""The diff through a real workspace: a fresh clone diffs clean, real changes show exactly."""

from __future__ import annotations

import json
import sqlite3

from tests.conftest import run_cli


def unexpected(report) -> list:
    return [c for sec in ("config", "services", "data") for c in getattr(report, sec) if not c.expected]


def test_fresh_chinook_clone_diffs_clean(chinook):
    from workbench.workspace import Workspace

    ws = Workspace(chinook)
    ws.fork("prod", "b1")
    report = ws.diff("prod", "b1")
    assert unexpected(report) == []
    scrubs = sorted((c.table, c.column) for c in report.data if c.intent == "scrub")
    assert scrubs == [("Customer", "Email"), ("Customer", "Fax"), ("Customer", "Phone"),
                      ("Employee", "Email"), ("Employee", "Phone")]  # one entry per column, not per row


def test_chinook_changes_show_exactly(chinook):
    from workbench.workspace import Workspace

    ws = Workspace(chinook)
    info = ws.fork("prod", "b1")
    db = sqlite3.connect(info.stores["db"]["location"])
    db.execute("UPDATE Invoice SET Total = 99.99 WHERE InvoiceId = 7")
    db.execute("DELETE FROM PlaylistTrack WHERE PlaylistId = 1 AND TrackId = 3402")
    db.execute("INSERT INTO Genre (GenreId, Name) VALUES (26, 'Música Popular Brasileira')")
    db.execute("UPDATE Customer SET Company = NULL WHERE CustomerId = 1")
    db.commit()
    db.close()
    report = ws.diff("prod", "b1", only_unexpected=True)
    got = sorted((c.path, c.kind) for c in report.data)
    assert got == sorted([
        ("db.Invoice[7].Total", "changed"),
        ("db.PlaylistTrack[1,3402]", "removed"),
        ("db.Genre[26]", "added"),
        ("db.Customer[1].Company", "changed"),
    ]), got
    added = next(c for c in report.data if c.kind == "added")
    assert "Música Popular Brasileira" in json.dumps(added.right, ensure_ascii=False)
    # the clone against its own fork snapshot: what did my reproduction steps change?
    own = ws.diff("b1@forked", "b1")
    assert sorted(c.path for c in own.data if not c.expected) == [p for p, _ in got]
    assert own.config == [] and unexpected(own) == unexpected(ws.diff("b1@forked", "b1"))


def test_fresh_demo_clone_diffs_clean_and_a_setting_shows(tmp_path):
    from workbench.demo import build_demo
    from workbench.workspace import Workspace

    root = build_demo(tmp_path / "demo", orders=2000)
    ws = Workspace(root)
    try:
        info = ws.fork("prod", "b1")
        assert unexpected(ws.diff("prod", "b1")) == []
        cfg = info.worktree / "config" / "app.yaml"
        cfg.write_text(cfg.read_text().replace("discount_mode: stacked", "discount_mode: sequential"))
        r = run_cli("diff", "prod", "b1", "--json", "--only-unexpected", cwd=root)
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)
        assert set(data) == {"config", "services", "data"}
        assert [(c["path"], c["left"], c["right"]) for c in data["config"]] == [
            ("config/app.yaml:pricing.discount_mode", "stacked", "sequential")]
        assert data["services"] == [] and data["data"] == []
    finally:
        ws.stop("b1")
