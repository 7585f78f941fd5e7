"""Checks: declared in repro.yaml, run against prod and a clone, kept, and written into a
promote's trailers. Prod's service is a real HTTP server that writes down every method it
receives: it must never see anything but GET and HEAD."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.conftest import free_port, git, make_shop_db, run_cli
from workbench.backends.local import kill_services
from workbench.check_results import CheckResult, trailer, verdict
from workbench.errors import InvalidInput, ProdReadOnly
from workbench.spec import parse_spec

# The shop's service: /orders/7 fails with 500 while config/app.yaml says "mode: broken"
# (read at each request, from the folder it runs in), and every request's method is logged.
COUNTER = '''\
import http.server, json, os, sys
port, log = int(sys.argv[1]), sys.argv[2]

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self):
        with open(log, "a") as f:
            f.write(self.command + " " + self.path + "\\n")
        if self.path == "/garbage":             # not HTTP at all
            self.wfile.write(b"nonsense\\r\\n\\r\\n")
            return
        if self.path == "/moved":               # a redirect to where a write would happen
            self.send_response(307)
            self.send_header("Location", "/orders/7/refund")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        mode = "fixed" if "mode: fixed" in open("config/app.yaml").read() else "broken"
        ok = self.path != "/orders/7" or mode == "fixed"
        body = json.dumps({"order": 7, "mode": mode, "token": os.environ.get("API_TOKEN")}).encode()
        self.send_response(200 if ok else 500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = answer

http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
'''

CHECKS = """\
checks:
  order-7:
    http: GET /orders/7
    expect: {status: 200, json: {mode: fixed}}
  alive:
    http: HEAD /health
    runs: 2
  refund:
    http: POST /orders/7/refund
    clones_only: true
    body: '{"reason": "test"}'
  smoke:
    command: echo env=$REPRO_ENV port=$REPRO_PORT_WEB
    expect: {text: "env="}
"""


def spec_text(port: int, logs: Path, checks: str = CHECKS) -> str:
    return textwrap.dedent(f"""\
        name: shop
        services:
          web:
            command: python counter.py {{port}} {logs}/{{env}}.log
            port: {port}
            env: {{API_TOKEN: tok-live-9f8e7d}}
        stores:
          db: {{type: sqlite, path: data/shop.db}}
        config_files: [config/*.yaml]
        """) + checks


@pytest.fixture
def counted(tmp_path: Path):
    """A workspace whose prod runs the method-counting shop."""
    root, logs = tmp_path / "shop", tmp_path / "methods"
    root.mkdir()
    logs.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "counter.py").write_text(COUNTER)
    (root / "config").mkdir()
    (root / "config" / "app.yaml").write_text("mode: broken\n")
    (root / ".gitignore").write_text("data/\n")
    (root / "repro.yaml").write_text(spec_text(free_port(), logs))
    make_shop_db(root / "data" / "shop.db", users=5)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "shop")
    yield root, logs
    kill_services(root)


def methods(logs: Path, env: str) -> list[str]:
    path = logs / f"{env}.log"
    return [line.split()[0] for line in path.read_text().splitlines()] if path.exists() else []


def test_a_check_reproduces_then_passes_after_the_fix_and_prod_only_ever_gets_get_and_head(counted):
    from workbench.workspace import Workspace

    root, logs = counted
    ws = Workspace(root)
    try:
        ws.start("prod")                                  # the local demo's prod: checks run after its start
        ws.fork("prod", "b1")                             # ... and after a fork, on the clone and on prod
        latest = {(r.env, r.name): r for r in ws.latest_checks()}
        assert latest[("prod", "order-7")].outcome == "fail" and latest[("prod", "order-7")].status == 500
        assert latest[("b1", "order-7")].outcome == "fail" and latest[("b1", "order-7")].status == 500
        assert verdict("b1", latest[("b1", "order-7")], latest[("prod", "order-7")]).text == \
            "reproduces: 500 on prod and b1"
        assert latest[("b1", "refund")].passed and latest[("b1", "smoke")].passed
        assert "env=b1" in latest[("b1", "smoke")].body
        assert ("prod", "refund") not in latest and ("prod", "smoke") not in latest   # clones only
        assert len(latest[("b1", "alive")].runs) == 2 and latest[("b1", "alive")].latency_ms is not None
        assert "tok-live-9f8e7d" not in latest[("b1", "order-7")].body          # a body's secret is masked
        assert "<secret:" in latest[("b1", "order-7")].body

        (ws.worktree("b1") / "config" / "app.yaml").write_text("mode: fixed\n")
        ws.stop("b1")
        ws.start("b1")
        r = run_cli("check", "b1", "--json", cwd=root)
        assert r.returncode == 0, r.stderr                # every check passes on b1
        out = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
        assert out["order-7"]["verdict"] == "fixed in b1: 200; prod still 500"
        assert out["order-7"]["results"]["prod"]["status"] == 500
        assert out["smoke"]["verdict"] == "passes in b1: exit 0; prod not checked (clones only)"
        r = run_cli("check", "prod", "order-7", cwd=root)
        assert r.returncode == 1 and "✖ 500" in r.stdout and "status 500, expected 200" in r.stdout

        text = run_cli("check", "b1", "order-7", cwd=root).stdout   # one check: both bodies and their diff
        assert '-  "mode": "broken"' in text and '+  "mode": "fixed"' in text
        assert "tok-live-9f8e7d" not in text

        ws.promote("b1", "Mode fixed")
        body = git(root, "log", "-1", "--format=%B", "repro/b1")
        assert "Repro-Check: order-7: prod fail 500, b1 pass 200" in body
        assert "Repro-Check: refund: b1 pass 200 (clones only)" in body
    finally:
        ws.close()
    assert set(methods(logs, "prod")) == {"GET", "HEAD"}
    assert "POST" in methods(logs, "b1")                  # the clones-only check reached the clone
    assert git(root, "status", "--porcelain") == ""       # prod's checkout untouched


def test_checks_that_cannot_run_say_why_and_bad_requests_say_what_to_do(counted):
    from workbench.workspace import Workspace

    root, logs = counted
    with (root / "repro.yaml").open("a") as f:
        f.write("  moved: {http: GET /moved, expect: {status: 200}}\n  garbled: {http: GET /garbage}\n")
    ws = Workspace(root)
    try:
        ws.start("prod")
        results = {r.name: r for r in ws.check("prod", ["moved", "garbled"])}
        assert results["moved"].status == 307 and "status 307, expected 200" in results["moved"].reason
        assert results["garbled"].outcome == "error" and "no answer from web" in results["garbled"].reason
        ws.stop("prod")
        ws.fork("prod", "b1")                              # prod is not running now
        ws.stop("b1")
        results = {(r.env, r.name): r for r in ws.check("b1", ["order-7"])}
        assert results[("b1", "order-7")].outcome == "error"
        assert "web is stopped in b1: start it (repro-tui start b1)" in results[("b1", "order-7")].reason
        assert results[("prod", "order-7")].outcome == "error"
        assert verdict("b1", results[("b1", "order-7")], None).text.startswith("could not run in b1")
    finally:
        ws.close()
    r = run_cli("check", "b1", "nope", cwd=root)
    assert r.returncode == 1 and "no check named 'nope'" in r.stderr and "order-7" in r.stderr
    r = run_cli("check", "b9", cwd=root)
    assert r.returncode == 1 and "no environment named 'b9'" in r.stderr
    r = run_cli("check", "B1", cwd=root)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    from workbench.checks import send

    with pytest.raises(ProdReadOnly):                      # the one place a request leaves refuses it too
        send("prod", "POST", "http://127.0.0.1:9/", {}, None, 1)
    asked = (logs / "prod.log").read_text().splitlines()
    assert "GET /moved" in asked and "GET /garbage" in asked
    assert not [line for line in asked if "/refund" in line]           # the redirect was not followed
    assert set(methods(logs, "prod")) == {"GET", "HEAD"}


def test_a_request_that_would_change_prod_is_refused_when_the_file_is_read(counted):
    root, _logs = counted
    text = (root / "repro.yaml").read_text().replace("    clones_only: true\n", "")
    (root / "repro.yaml").write_text(text)
    r = run_cli("list", cwd=root)
    line = text.splitlines().index("    http: POST /orders/7/refund") + 1
    assert r.returncode == 2 and f"repro.yaml:{line}:11" in r.stderr
    assert "would send POST to prod" in r.stderr and "clones_only: true" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("checks, where, words", [
    ("checks:\n  Bad: {http: GET /}\n", "7:3", "invalid check name"),
    ("checks:\n  a: {http: GET /, expect: {status: 99}}\n", "7:37", "HTTP status 100-599"),
    ("checks:\n  a: {http: FETCH /}\n", "7:13", "unknown HTTP method"),
    ("checks:\n  a: {http: GET orders}\n", "7:13", "METHOD PATH"),
    ("checks:\n  a: {http: DELETE /x, clones_only: true}\n  b: {http: PUT /x}\n", "8:13", "would send PUT"),
    ("checks:\n  a: {http: GET /, service: wbe}\n", "7:29", "Did you mean 'web'"),
    ("checks:\n  a: {http: GET /, expect: {staus: 200}}\n", "7:29", "Did you mean 'status'"),
    ("checks:\n  a: {command: run, expect: {status: 200}}\n", "7:30", "Valid keys here: exit, text, latency_ms"),
    ("checks:\n  a: {http: GET /, command: x}\n", "7:3", "one of 'http'"),
    ("checks:\n  a: {http: GET /, runs: 0}\n", "7:26", "1-20"),
    ("checks:\n  a: {http: GET /, expect: {json: {a: [1]}}}\n", "7:39", "plain value"),
    # a GET that asks prod's app to act as another method
    ("checks:\n  a: {http: GET /x, headers: {X-HTTP-Method-Override: DELETE}}\n", "7:30", "treat its GET as another"),
    ("checks:\n  a: {http: GET /x?id=1&_method=delete}\n", "7:13", "'_method=' in its path"),
])
def test_bad_checks_name_the_line_and_column(checks, where, words):
    head = "name: x\nservices:\n  web: {command: run, port: 80}\nstores: {}\n\n"
    with pytest.raises(InvalidInput) as err:
        parse_spec(head + checks, Path("/ws"))
    assert f"repro.yaml:{where}" in str(err.value) and words in str(err.value), str(err.value)


def test_verdicts_read_the_same_everywhere():
    def r(env: str, outcome: str, status: int | None = None, **kw) -> CheckResult:
        return CheckResult(name="c", env=env, outcome=outcome, request="GET /", status=status, **kw)

    assert verdict("b1", r("b1", "fail", 500), r("prod", "fail", 500)).text == "reproduces: 500 on prod and b1"
    assert verdict("b1", r("b1", "fail", 502), r("prod", "fail", 500)).text == "reproduces: 500 on prod, 502 in b1"
    assert verdict("b1", r("b1", "pass", 200), r("prod", "fail", 500)).text == "fixed in b1: 200; prod still 500"
    assert verdict("b1", r("b1", "fail", 500), r("prod", "pass", 200)).text == "fails in b1 only: 500; prod 200"
    assert verdict("b1", r("b1", "pass", 200), r("prod", "pass", 200)).text == "passes: 200 on prod and b1"
    assert verdict("b1", None, r("prod", "fail", 500)).text == "not run in b1 yet"
    assert verdict("prod", r("prod", "fail", 500), None).text == "fails on prod: 500"
    slow = r("b1", "fail", 200, failure="latency", latency_ms=812.0)
    assert verdict("b1", slow, r("prod", "fail", 500)).text == "reproduces: 500 on prod, 200 (812 ms) in b1"
    assert trailer("c", "b1", r("b1", "pass", 200), r("prod", "fail", 500)) == "c: prod fail 500, b1 pass 200"
    assert trailer("c", "b1", None, r("prod", "error")) == "c: prod no answer, b1 not run"
