"""The incident loop on the demo shop, through the real command line: the check fails on
prod and on the fresh clone, passes after the fix, and its trailer is in the commit; a
hand edit of prod is drift and reaches a clone with --with-drift; the post-mortem of the
story holds the timeline, the check results and the commit, the same every time, with no
secret value in it."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port, git, run_cli
from workbench.backends.local import kill_services
from workbench.demo import DEMO_BUG, build_demo

SECRETS = ["ak_live_FAKE_DEMO_0000000000000000", "s3cr3t", "ak_live_ROTATED_7777"]


@pytest.fixture
def demo(tmp_path: Path):
    root = build_demo(tmp_path / "shop", orders=3000, port=free_port())
    yield root
    kill_services(root)


def cli(root: Path, *args: str, code: int = 0) -> str:
    r = run_cli(*args, cwd=root)
    assert r.returncode == code, (args, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return r.stdout


def port_of(root: Path, env: str) -> int:
    return json.loads(cli(root, "status", env, "--json"))["services"]["web"]["port"]


def test_the_demo_story_is_reproduced_proven_fixed_promoted_and_written_up(demo, tmp_path):
    check = DEMO_BUG["check"]
    out = cli(demo, "start", "prod", "--yes")   # prod: the confirmation it needs
    assert f"check {check}: fails on prod: 500" in out
    out = cli(demo, "fork", "prod", "bug1")
    assert f"check {check}: reproduces: 500 on prod and bug1" in out

    config = demo / ".repro" / "envs" / "bug1" / DEMO_BUG["config_file"]
    config.write_text(config.read_text().replace("discount_mode: stacked", "discount_mode: sequential"))
    cli(demo, "stop", "bug1")
    assert f"check {check}: fixed in bug1: 200; prod still 500" in cli(demo, "start", "bug1")
    refund = urllib.request.Request(f"http://127.0.0.1:{port_of(demo, 'bug1')}/orders/2001/refund", method="POST")
    urllib.request.urlopen(refund, timeout=10).close()
    cli(demo, "snapshot", "bug1")
    cli(demo, "promote", "bug1", "-m", "Count discount codes after markdowns (ticket #1042)")
    body = git(demo, "log", "-1", "--format=%B", "repro/bug1")
    assert f"Repro-Check: {check}: prod fail 500, bug1 pass 200" in body
    sha = git(demo, "rev-parse", "repro/bug1")

    report = cli(demo, "report", "bug1")
    assert report == cli(demo, "report", "bug1")                      # the same inputs, the same document
    for words in ("# Post-mortem: shop — bug1", "## Summary", f"**{check}** (`GET /orders/1042` on web",
                  "failed on prod at", "bug1 reproduced it at", f"fixed by `{sha[:12]}`",
                  "now: fixed in bug1: 200; prod still 500",
                  "## Timeline", "| fork bug1 from prod |", "| check bug1 (after fork) |", "| promote bug1 |",
                  f"### Promoted `{sha[:12]}`: Count discount codes after markdowns (ticket #1042)",
                  f"`Repro-Check: {check}: prod fail 500, bug1 pass 200`",
                  "~ config/app.yaml:pricing.discount_mode  'stacked' → 'sequential'",
                  "`bug1@forked` → `bug1@s1`", "| db.orders | 1 | 0 | 0 | `2001` |", "| db.refunds | 0 | 1 | 0 |",
                  "## Check results", f"| {check} | prod | fail | 500 |", f"| {check} | bug1 | pass | 200 |",
                  "## Prod's drift", "None: prod runs what main"):
        assert words in report, words
    assert not [s for s in SECRETS if s in report]
    timeline = report.split("## Timeline")[1].split("\n## ")[0]
    assert timeline.index("fork bug1") < timeline.index("start bug1") < timeline.index("promote bug1")

    data = json.loads(cli(demo, "report", "--json"))
    assert data["envs"] == ["bug1"] and data["summary"][0]["clones"][0]["commit"]["sha"] == sha
    written = tmp_path / "postmortem.md"
    cli(demo, "report", "bug1", "-o", str(written))
    assert written.read_text() == report
    r = run_cli("report", "-o", "postmortem.md", cwd=demo)            # into prod's checkout: refused
    assert r.returncode == 1 and "inside prod's checkout" in r.stderr and not (demo / "postmortem.md").exists()
    assert run_cli("report", "--since", "yesterday-ish", cwd=demo).returncode == 2
    r = run_cli("report", "-o", str(tmp_path / "no-such-folder" / "pm.md"), cwd=demo)
    assert r.returncode == 2 and "does not exist" in r.stderr
    assert "no clone named 'bug9'" in run_cli("report", "bug9", cwd=demo).stderr
    assert "## Timeline\n\nNothing in the journal." in cli(demo, "report", "--since", "2999-01-01")
    assert git(demo, "status", "--porcelain") == ""                   # prod's checkout as it was


def test_a_hot_fix_on_prod_is_drift_and_a_clone_with_drift_promotes_it(demo):
    index = (demo / ".git" / "index").read_bytes()
    assert "no drift" in cli(demo, "drift")
    config = demo / "config" / "app.yaml"                             # the hot fix, by hand, on prod
    config.write_text(config.read_text().replace("shipping_fee: 4.90", "shipping_fee: 5.90")
                      .replace(SECRETS[0], SECRETS[2]))
    (demo / "config" / "extra.yaml").write_text("banner: free shipping over 60\n")
    (demo / ".env").unlink()
    (demo / "notes.txt").write_text("not a path the workspace cares about\n")

    drift = json.loads(cli(demo, "drift", "--json"))
    assert drift["files"] == [{"path": ".env", "kind": "removed"}, {"path": "config/app.yaml", "kind": "changed"},
                              {"path": "config/extra.yaml", "kind": "added"}]
    keys = {c["path"]: c for c in drift["config"]}
    assert (keys["config/app.yaml:pricing.shipping_fee"]["left"], keys["config/app.yaml:pricing.shipping_fee"]
            ["right"]) == (4.9, 5.9)
    secret = keys["config/app.yaml:payment.api_key"]
    assert secret["masked"] and secret["left"].startswith("<secret:") and secret["left"] != secret["right"]
    text = cli(demo, "drift")
    assert "~ config/app.yaml:pricing.shipping_fee  4.9 → 5.9" in text and "--with-drift" in text
    assert "<secret:<" not in text and not [s for s in SECRETS if s in text + json.dumps(drift)]
    assert (demo / ".git" / "index").read_bytes() == index            # read without writing prod's index

    out = cli(demo, "fork", "prod", "hotfix", "--with-drift")
    assert "with prod's drift: .env, config/app.yaml, config/extra.yaml" in out
    wt = demo / ".repro" / "envs" / "hotfix"
    assert (wt / "config" / "app.yaml").read_bytes() == config.read_bytes()
    assert (wt / "config" / "extra.yaml").exists() and not (wt / ".env").exists() and not (wt / "notes.txt").exists()
    cli(demo, "promote", "hotfix", "-m", "The shipping fee prod has run with since the fire")
    assert git(demo, "show", "--stat", "--format=", "repro/hotfix").count("|") == 3
    assert "shipping_fee: 5.90" in git(demo, "show", "repro/hotfix:config/app.yaml")
    assert "shipping_fee: 4.90" in git(demo, "show", "main:config/app.yaml")   # prod's branch as it was
    report = cli(demo, "report", "hotfix")
    assert "The shipping fee" in report and "~ config/app.yaml:payment.api_key  <secret:" in report
    assert not [s for s in SECRETS if s in report]
    r = run_cli("fork", "hotfix", "again", "--with-drift", cwd=demo)
    assert r.returncode == 2 and "fork prod with it" in r.stderr
