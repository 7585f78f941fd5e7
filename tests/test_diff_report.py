"""compute_diff on a small workspace built from real files: a fresh clone diffs clean,
real changes show up exactly, and no secret reaches any output."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from workbench.diff import DiffSource, compute_diff
from workbench.diff.cli import run_diff_command
from workbench.diff.model import SECTIONS
from workbench.diff.render import render, summary_line
from workbench.model import Side
from workbench.secrets import SecretPolicy
from workbench.spec import load_spec

CHINOOK = Path(__file__).parent / "data" / "Chinook_Sqlite.sqlite"

SPEC = """\
name: shop
backend: local
services:
  web:
    command: python app.py --port {port} --db {stores.db.path}
    port: 8000
    env: {SMTP_HOST: smtp.example.com, DISCOUNT_MODE: floor, API_TOKEN: tok-prod-1234}
  worker:
    command: python worker.py
stores:
  db: {type: sqlite, path: data/chinook.db}
  uploads: {type: files, path: data/uploads}
clone:
  overrides:
    env: {SMTP_HOST: "127.0.0.1:1025"}
  scrub:
    db:
      Customer.Email: email
      Customer.Phone: null
config_files: [config/*.yaml, config/*.json, config/*.toml, config/*.ini, .env]
"""

APP_YAML = """\
feature:
  rounding: floor
  flags: [a, b]
database:
  url: postgres://shop:pg-pass-prod@db:5432/shop
  password: yaml-pass-prod
"""

# every raw secret value the tests write; none may appear in any output
SECRETS = ["tok-prod-1234", "pg-pass-prod", "yaml-pass-prod", "env-key-prod", "env-key-clone", "pg-pass-clone",
           "ini-secret-prod", "ini-secret-clone"]


class Workspace(SimpleNamespace):
    """A workspace as the diff command sees it: its diff source, and sides by name."""

    def side(self, ref: str) -> Side:
        return self.sides[ref]

    @property
    def source(self) -> DiffSource:
        return DiffSource.of_spec(self.spec, self.secrets)

    def diff(self, a: str, b: str, **kw):
        return compute_diff(self.source, self.side(a), self.side(b), **kw)


def make(tmp_path: Path) -> Workspace:
    prod = tmp_path / "prod"
    (prod / "config").mkdir(parents=True)
    (prod / "data" / "uploads" / "img").mkdir(parents=True)
    (prod / "repro.yaml").write_text(SPEC)
    (prod / "config" / "app.yaml").write_text(APP_YAML)
    (prod / "config" / "limits.json").write_text(json.dumps({"max": 10, "zones": ["eu", "us"]}))
    (prod / "config" / "pool.toml").write_text("[pool]\nsize = 5\n")
    (prod / "config" / "mail.ini").write_text("[smtp]\nhost = mail\nsecret = ini-secret-prod\n")
    (prod / ".env").write_text("DEBUG=0\nexport SERVICE_KEY=env-key-prod\n")
    (prod / "data" / "uploads" / "img" / "logo.png").write_bytes(b"\x89PNG logo")
    (prod / "data" / "uploads" / "terms.txt").write_text("terms v1")
    shutil.copyfile(CHINOOK, prod / "data" / "chinook.db")
    # the clone, as a fork leaves it: same config, scrubbed copy of the data, its own port
    clone = tmp_path / "clone"
    shutil.copytree(prod, clone, ignore=shutil.ignore_patterns("data"))
    data = tmp_path / "clone-data"
    shutil.copytree(prod / "data" / "uploads", data / "uploads")
    shutil.copyfile(CHINOOK, data / "chinook.db")
    sql(data / "chinook.db", "UPDATE Customer SET Email = 'c' || CustomerId || '@example.invalid', Phone = NULL")
    spec = load_spec(prod)
    sides = {
        "prod": Side(ref="prod", env="prod", snapshot=None, kind="prod", config_root=prod, services=spec.services,
                     env_overrides={}, service_overrides={}, ports={"web": 8000},
                     store_locations={"db": str(prod / "data" / "chinook.db"),
                                      "uploads": str(prod / "data" / "uploads")},
                     runtime={"web": {"state": "running", "pid": 100, "started_at": time.time() - 50}}),
        "b1": Side(ref="b1", env="b1", snapshot=None, kind="clone", config_root=clone, services=spec.services,
                   env_overrides=dict(spec.override_env), service_overrides={}, ports={"web": 8123},
                   store_locations={"db": str(data / "chinook.db"), "uploads": str(data / "uploads")},
                   runtime={"web": {"state": "running", "pid": 200, "started_at": time.time() - 5}}),
    }
    return Workspace(spec=spec, secrets=SecretPolicy(), sides=sides, root=prod, clone=clone, data=data)


def sql(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for s in statements:
        conn.execute(s)
    conn.close()


def diff(ws: Workspace, **kw):
    return compute_diff(ws.source, ws.sides["prod"], ws.sides["b1"], **kw)


def outputs(ws: Workspace, report) -> str:
    """Every output a user can see: JSON, text with and without colour, the CLI both ways."""
    texts = [json.dumps(report.to_json()), json.dumps(report.to_json(limit=1)),
             "\n".join(render(report)), "\n".join(render(report, color=True)), summary_line(report)]
    for as_json in (False, True):
        out = io.StringIO()
        args = SimpleNamespace(a="prod", b="b1", json=as_json, only_unexpected=False, limit=None,
                               include_scrubbed=False)
        assert run_diff_command(ws, args, out) == 0
        texts.append(out.getvalue())
    return "\n".join(texts)


def test_a_fresh_clone_diffs_clean(tmp_path):
    ws = make(tmp_path)
    report = diff(ws)
    assert all(c.expected for c in report.changes()), [c.path for c in report.changes() if not c.expected]
    assert report.clean
    unexpected = report.only_unexpected()
    assert all(unexpected.section(s) == [] for s in SECTIONS)
    # what it does differ by, on purpose
    paths = {(c.path, c.intent) for c in report.changes() if not c.runtime}
    assert paths == {("services.web.env.SMTP_HOST", "override"), ("services.worker.env.SMTP_HOST", "override"),
                     ("services.web.port", "override"), ("db.Customer.Email", "scrub"),
                     ("db.Customer.Phone", "scrub")}
    runtime = {c.path for c in report.changes() if c.runtime}
    assert runtime == {"services.web.runtime.pid", "services.web.runtime.uptime"}
    assert report.counts()["services"] == {"total": 3, "unexpected": 0, "more": 0}
    assert report.stores["db"]["type"] == "sqlite"
    for secret in SECRETS:
        assert secret not in outputs(ws, report)


def test_changed_setting_secret_and_rows_show_exactly(tmp_path):
    ws = make(tmp_path)
    (ws.clone / "config" / "app.yaml").write_text(
        APP_YAML.replace("floor", "round").replace("pg-pass-prod", "pg-pass-clone"))
    (ws.clone / ".env").write_text("DEBUG=0\nexport SERVICE_KEY=env-key-clone\n")
    (ws.clone / "config" / "mail.ini").write_text("[smtp]\nhost = mail\nsecret = ini-secret-clone\n")
    sql(ws.data / "chinook.db", "UPDATE Invoice SET Total = 0 WHERE InvoiceId = 42",
        "DELETE FROM PlaylistTrack WHERE PlaylistId = 5 AND TrackId = 3",
        "UPDATE Artist SET Name = 'Ærø' WHERE ArtistId = 9")
    (ws.data / "uploads" / "terms.txt").write_text("terms v2")
    (ws.data / "uploads" / "new.txt").write_text("hello")
    report = diff(ws, only_unexpected=True)
    got = {(c.section, c.path, c.kind) for c in report.changes()}
    assert got == {
        ("config", "config/app.yaml:feature.rounding", "changed"),
        ("config", "config/app.yaml:database.url", "changed"),
        ("config", ".env:SERVICE_KEY", "changed"),
        ("config", "config/mail.ini:smtp.secret", "changed"),
        ("data", "db.Invoice[42].Total", "changed"),
        ("data", "db.PlaylistTrack[5,3]", "removed"),
        ("data", "db.Artist[9].Name", "changed"),
        ("data", "uploads:terms.txt", "changed"),
        ("data", "uploads:new.txt", "added"),
    }
    by = {c.path: c for c in report.changes()}
    assert (by["config/app.yaml:feature.rounding"].left, by["config/app.yaml:feature.rounding"].right) == (
        "floor", "round")
    url = by["config/app.yaml:database.url"]
    assert url.masked and url.left.startswith("postgres://shop:<secret:") and url.left != url.right
    key = by[".env:SERVICE_KEY"]
    assert key.masked and key.left == ws.secrets.tag("env-key-prod")
    assert by["db.Artist[9].Name"].right == "Ærø"
    assert by["db.Invoice[42].Total"].as_dict()["key"] == [42]
    text = outputs(ws, diff(ws))
    for secret in SECRETS:
        assert secret not in text
    assert "Ærø" in text and "<secret:" in text


def test_json_has_exactly_three_sections_and_the_change_keys(tmp_path):
    ws = make(tmp_path)
    sql(ws.data / "chinook.db", "UPDATE Track SET Composer = 'x' WHERE TrackId <= 30")
    out = io.StringIO()
    args = SimpleNamespace(a="prod", b="b1", json=True, only_unexpected=True, limit=5, include_scrubbed=False)
    run_diff_command(ws, args, out)
    doc = json.loads(out.getvalue())
    assert list(doc) == ["config", "services", "data"]
    assert len(doc["data"]) == 5
    for change in doc["data"]:
        assert {"path", "kind", "left", "right", "intent", "store", "table", "key", "column", "masked"} <= set(change)
    full = diff(ws, limit=5)
    g = full.group("data", "db.Track")
    assert (g.shown, g.more) == (5, 25)
    assert any("25 more in db.Track" in line for line in render(full))


def test_sections_and_bad_arguments(tmp_path):
    from workbench.errors import InvalidInput

    ws = make(tmp_path)
    report = diff(ws, sections=["config"])
    assert report.services == [] and report.data == [] and "data" not in report.seconds
    with pytest.raises(InvalidInput):
        diff(ws, sections=["nope"])
    with pytest.raises(InvalidInput):
        run_diff_command(ws, SimpleNamespace(a="prod", b="b1", json=False, limit=0), io.StringIO())


def test_snapshot_side_is_read_as_an_immutable_file(tmp_path):
    ws = make(tmp_path)
    snap = tmp_path / "snap"
    snap.mkdir()
    shutil.copyfile(ws.data / "chinook.db", snap / "chinook.db")
    (snap / "chinook.db").chmod(0o444)
    snap.chmod(0o555)
    try:
        b1 = ws.sides["b1"]
        forked = Side(ref="b1@forked", env="b1", snapshot="forked", kind="clone", config_root=ws.clone,
                      services=b1.services, env_overrides=b1.env_overrides, service_overrides={}, ports=b1.ports,
                      store_locations={"db": str(snap / "chinook.db"), "uploads": b1.store_locations["uploads"]})
        sql(ws.data / "chinook.db", "UPDATE Genre SET Name = 'Jazz!' WHERE GenreId = 2")
        report = compute_diff(ws.source, forked, b1)
        assert [(c.path, c.right) for c in report.changes()] == [("db.Genre[2].Name", "Jazz!")]
    finally:
        snap.chmod(0o755)
