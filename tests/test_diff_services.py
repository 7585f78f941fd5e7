"""Services: effective settings with overrides, intents, runtime facts, Docker's described data;
and folders (files stores)."""

from __future__ import annotations

import json
from pathlib import Path

from workbench.diff.files import diff_folders, folder_token
from workbench.diff.model import GroupSummary
from workbench.diff.services import ServicesDiff, effective
from workbench.diff.values import Shower
from workbench.model import Side
from workbench.secrets import SecretPolicy
from workbench.spec import parse_spec

SPEC = """\
name: shop
services:
  web:
    command: python app.py --port {port}
    port: 8000
    env: {MODE: floor, DATABASE_URL: "postgres://app:db-pw-prod@db/shop", SMTP_HOST: smtp.example.com}
clone:
  overrides:
    env: {SMTP_HOST: sink}
    services:
      web: {command: "python app.py --port {port} --debug"}
"""


def side(tmp_path: Path, ref: str, kind: str, text: str = SPEC, runtime=None, **kw) -> Side:
    spec = parse_spec(text, tmp_path)
    clone = kind == "clone"
    return Side(ref=ref, env=ref.split("@")[0], snapshot=None, kind=kind, config_root=tmp_path,
                services=spec.services, env_overrides=dict(spec.override_env) if clone else {},
                service_overrides=dict(spec.override_services) if clone else {},
                ports=kw.get("ports", {"web": 8000}), store_locations={}, runtime=runtime)


def run(a: Side, b: Side, **kw):
    d = ServicesDiff(a, b, Shower(SecretPolicy()), **kw)
    return list(d.changes())


def test_overrides_and_automatic_differences_carry_intent(tmp_path):
    prod = side(tmp_path, "prod", "prod")
    b1 = side(tmp_path, "b1", "clone", ports={"web": 8123})
    assert effective(b1)["web"]["env"]["SMTP_HOST"] == "sink"
    got = {(c.path, c.intent) for c in run(prod, b1)}
    assert got == {("services.web.env.SMTP_HOST", "override"), ("services.web.command", "override"),
                   ("services.web.port", "override")}


def test_a_changed_setting_in_the_clone_spec_is_unexpected_and_secrets_masked(tmp_path):
    prod = side(tmp_path, "prod", "prod")
    changed = SPEC.replace("MODE: floor", "MODE: round").replace("db-pw-prod", "db-pw-clone")
    b1 = side(tmp_path, "b1", "clone", text=changed, ports={"web": 8123})
    got = {c.path: c for c in run(prod, b1)}
    assert got["services.web.env.MODE"].intent is None
    assert (got["services.web.env.MODE"].left, got["services.web.env.MODE"].right) == ("floor", "round")
    url = got["services.web.env.DATABASE_URL"]
    assert url.masked and url.intent is None
    text = json.dumps([c.as_dict() for c in got.values()])
    assert "db-pw-prod" not in text and "db-pw-clone" not in text


def test_runtime_facts_are_shown_not_counted(tmp_path):
    prod = side(tmp_path, "prod", "prod", runtime={"web": {"state": "running", "pid": 10, "started_at": 100.0}})
    b1 = side(tmp_path, "b1", "clone", runtime={"web": {"state": "crashed", "pid": None}})
    d = ServicesDiff(prod, b1, Shower(), now=160.0)
    got = {c.path: c for c in d.changes() if c.runtime}
    assert (got["services.web.runtime.state"].left, got["services.web.runtime.state"].right) == ("running",
                                                                                                  "crashed")
    assert got["services.web.runtime.uptime"].left == 60
    assert all(c.expected for c in got.values())
    assert d.groups[0].total == 2            # the command and SMTP_HOST; not the runtime facts


def test_docker_described_data(tmp_path):
    prod = side(tmp_path, "prod", "prod")
    b1 = side(tmp_path, "b1", "clone")
    described = ({"web": {"image": "shop:1", "name": "shop-web-1", "env": {"SMTP_HOST": "smtp", "API_KEY": "k-1"},
                          "id": "abc", "networks": ["shop"]}},
                 {"web": {"image": "shop:2", "name": "repro-b1-web", "env": {"SMTP_HOST": "sink", "API_KEY": "k-2"},
                          "id": "def", "networks": ["repro-b1"]}})
    got = {c.path: c for c in run(prod, b1, described=described)}
    assert got["services.web.container.image"].intent is None
    assert got["services.web.container.name"].intent == "override"
    assert got["services.web.container.networks"].intent == "override"
    assert got["services.web.container.env.SMTP_HOST"].intent == "override"
    assert got["services.web.container.id"].runtime
    assert got["services.web.container.env.API_KEY"].masked
    assert "k-1" not in json.dumps([c.as_dict() for c in got.values()])


def test_folders_added_removed_changed_by_content(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for r in (a, b):
        (r / "img").mkdir(parents=True)
        (r / "img" / "same.png").write_bytes(b"\x89PNG same")
        (r / "same-size.txt").write_text("aaaa")
    (a / "gone.txt").write_text("x")
    (b / "new.txt").write_text("y")
    (b / "same-size.txt").write_text("aaab")
    token = folder_token(str(b))
    groups: list[GroupSummary] = []
    got = {(c.path, c.kind) for c in diff_folders("uploads", str(a), str(b), groups=groups)}
    assert got == {("uploads:gone.txt", "removed"), ("uploads:new.txt", "added"),
                   ("uploads:same-size.txt", "changed")}
    assert groups[0].total == 3
    assert folder_token(str(b)) == token
    (b / "img" / "same.png").write_bytes(b"\x89PNG diff")
    assert folder_token(str(b)) != token
