"""The demo workspace: a real git repository, real SQLite data, and the real shop app
answering HTTP on a free port, with the planted bug where the README says it is."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import free_port
from workbench.demo import DEMO_BUG, DEMO_PORT, build_demo, default_demo_path
from workbench.demo.build import CUSTOMERS, TEMPLATE_FILES
from workbench.demo.data import generate
from workbench.errors import InvalidInput, Refused
from workbench.mailbox import Mailbox
from workbench.spec import load_spec

ORDERS = 20000


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One full-size demo, built once and only read by the tests that share it."""
    return build_demo(tmp_path_factory.mktemp("demo") / "shop")


@pytest.fixture
def demo_copy(demo: Path, tmp_path: Path) -> Path:
    """A private copy, for tests that change the data or the settings."""
    return Path(shutil.copytree(demo, tmp_path / "shop", symlinks=True))


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


# --- the repository ----------------------------------------------------------------------


def test_demo_is_a_new_repository_with_one_commit_on_main(demo: Path) -> None:
    assert git(demo, "rev-parse", "--show-toplevel") == str(demo.resolve())
    assert git(demo, "branch", "--show-current") == "main"
    assert git(demo, "rev-list", "--count", "main") == "1"
    assert sorted(git(demo, "ls-files").splitlines()) == sorted(TEMPLATE_FILES.values())
    assert git(demo, "status", "--porcelain") == ""  # data/ exists but is ignored


def test_data_is_git_ignored_and_not_committed(demo: Path) -> None:
    assert (demo / "data" / "shop.db").is_file()
    assert git(demo, "check-ignore", "data/shop.db", "data/uploads/invoices/INV-000001.txt").splitlines() == [
        "data/shop.db", "data/uploads/invoices/INV-000001.txt"]
    assert not any(p.startswith("data/") for p in git(demo, "ls-files").splitlines())


def test_repro_yaml_loads_with_the_real_spec_loader(demo: Path) -> None:
    spec = load_spec(demo)
    assert (spec.name, spec.backend, spec.prod_branch) == ("shop", "local", "main")
    web = spec.services["web"]
    assert web.port == DEMO_PORT
    assert web.health.kind == "http" and web.health.path == "/health"
    assert isinstance(web.command, str)
    assert "{port}" in web.command and "{stores.db.path}" in web.command and "config/app.yaml" in web.command
    assert {n: (s.type, s.path) for n, s in spec.stores.items()} == {
        "db": ("sqlite", "data/shop.db"), "uploads": ("files", "data/uploads")}
    assert spec.override_env == {"SMTP_HOST": "{mail.host}:{mail.port}"}   # the clone's own mail sink
    assert {(r.table, r.column): r.strategy for r in spec.scrub} == {
        ("customers", "email"): "email", ("customers", "name"): "name", ("customers", "phone"): "phone"}
    assert spec.config_files == ["config/*.yaml", ".env"]
    # every scrubbed column exists in the data it will be applied to
    columns = {row[1] for row in query(demo / "data" / "shop.db", "PRAGMA table_info(customers)")}
    assert {r.column for r in spec.scrub} <= columns


def test_config_files_hold_the_settings_the_story_needs(demo: Path) -> None:
    config = YAML(typ="safe").load((demo / "config" / "app.yaml").read_text())
    assert config["pricing"]["discount_mode"] == DEMO_BUG["buggy_value"]
    assert "FAKE" in config["payment"]["api_key"]
    env = (demo / ".env").read_text()
    assert "DATABASE_URL=postgres://shop:s3cr3t@db/shop" in env and "SMTP_HOST=smtp.example.com" in env


# --- the data ----------------------------------------------------------------------------


def test_data_has_the_expected_rows(demo: Path) -> None:
    db = demo / "data" / "shop.db"
    count = {t: query(db, f"SELECT count(*) FROM {t}")[0][0]
             for t in ("customers", "orders", "order_items", "discount_codes", "products", "refunds")}
    assert count["customers"] == CUSTOMERS
    assert count["orders"] == ORDERS
    assert 2 * ORDERS <= count["order_items"] <= 3 * ORDERS
    assert count["discount_codes"] == 6 and count["products"] >= 30
    assert count["refunds"] == query(db, "SELECT count(*) FROM orders WHERE status = 'refunded'")[0][0] > 0
    names = [r[0] for r in query(db, "SELECT name FROM customers")]
    assert sum(not n.isascii() for n in names) > CUSTOMERS // 4
    for first in ("Zoë", "Øyvind", "José"):
        assert any(n.startswith(first + " ") for n in names), first
    emails = [r[0] for r in query(db, "SELECT email FROM customers")]
    assert len(set(emails)) == len(emails) and all(e.isascii() and "@example." in e for e in emails)
    # the bug's orders are planted, and nothing else carries the staff code on sale items
    planted = query(db, "SELECT DISTINCT o.id FROM orders o JOIN order_items i ON i.order_id = o.id "
                        "WHERE o.discount_code = 'STAFF70' AND i.markdown_pct > 0 ORDER BY o.id")
    assert [r[0] for r in planted] == DEMO_BUG["order_ids"]
    assert query(db, "SELECT status FROM orders WHERE id = ?", DEMO_BUG["refund_order_id"]) == [("paid",)]
    assert sorted(p.name for p in (demo / "data" / "uploads" / "invoices").iterdir())[:2] == [
        "INV-000001.txt", "INV-000002.txt"]


def test_data_is_the_same_every_time(tmp_path: Path) -> None:
    dumps = []
    for name in ("a", "b"):
        db = tmp_path / f"{name}.db"
        generate(db, orders=1500, customers=100, planted=[318, 1042], paid=[])
        conn = sqlite3.connect(db)
        dumps.append("\n".join(conn.iterdump()))
        conn.close()
    assert dumps[0] == dumps[1]


def test_generating_twenty_thousand_orders_is_fast(tmp_path: Path) -> None:
    started = time.perf_counter()
    generate(tmp_path / "shop.db", orders=ORDERS, customers=CUSTOMERS, planted=DEMO_BUG["order_ids"], paid=[])
    assert time.perf_counter() - started < 2.0


def _load_app(root: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_shop_app", root / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _failing_orders(root: Path, discount_mode: str) -> list[int]:
    """Price every order with the app's own code; return those whose total is negative."""
    app = _load_app(root)
    config = app.parse_config((root / "config" / "app.yaml").read_text())
    settings = app.Settings(config, {"DISCOUNT_MODE": discount_mode})
    db = root / "data" / "shop.db"
    items: dict[int, list[dict[str, int]]] = {}
    for oid, qty, unit, markdown in query(db, "SELECT order_id, qty, unit_price_cents, markdown_pct FROM order_items"):
        items.setdefault(oid, []).append({"qty": qty, "unit_price_cents": unit, "markdown_pct": markdown})
    percent = dict(query(db, "SELECT o.id, coalesce(d.percent, 0) FROM orders o "
                             "LEFT JOIN discount_codes d ON d.code = o.discount_code"))
    return sorted(oid for oid, rows in items.items() if app.price_order(rows, percent[oid], settings)["total"] < 0)


def test_the_bug_hits_exactly_the_documented_orders_and_only_with_the_buggy_setting(demo: Path) -> None:
    assert _failing_orders(demo, DEMO_BUG["buggy_value"]) == DEMO_BUG["order_ids"]
    assert _failing_orders(demo, DEMO_BUG["fixed_value"]) == []


def test_the_apps_config_reader_agrees_with_a_real_yaml_parser(demo: Path) -> None:
    text = (demo / "config" / "app.yaml").read_text()
    assert _load_app(demo).parse_config(text) == YAML(typ="safe").load(text)


# --- refusals ----------------------------------------------------------------------------


def test_refuses_a_folder_inside_another_repository(demo: Path) -> None:
    target = demo / "config" / "nested-demo"
    with pytest.raises(Refused, match="inside the git repository") as err:
        build_demo(target, orders=200)
    assert err.value.hint
    assert not target.exists()
    assert git(demo, "status", "--porcelain") == ""


def test_refuses_a_non_empty_folder_and_a_file(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(Refused, match="not empty"):
        build_demo(tmp_path / "busy", orders=200)
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(Refused, match="is a file"):
        build_demo(tmp_path / "a-file", orders=200)


def test_an_empty_folder_is_fine_and_bad_sizes_are_invalid_input(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    root = build_demo(tmp_path / "empty", orders=200)
    assert query(root / "data" / "shop.db", "SELECT count(*) FROM orders") == [(200,)]
    with pytest.raises(InvalidInput):
        build_demo(tmp_path / "tiny", orders=3)
    assert not (tmp_path / "tiny").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG_DATA_HOME is how Linux picks the data folder")
def test_default_demo_path_is_a_new_folder_each_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    first = default_demo_path()
    assert first == tmp_path / "repro-tui" / "demo-1" and not first.exists()
    first.mkdir(parents=True)
    assert default_demo_path() == tmp_path / "repro-tui" / "demo-2"


# --- the app, for real -------------------------------------------------------------------


@contextmanager
def running_app(root: Path, env: dict[str, str] | None = None) -> Iterator[tuple[str, Path]]:
    """Start app.py as repro.yaml does (python app.py --port --db --uploads --config), from its folder."""
    port = free_port()
    log = root.parent / f"app-{port}.log"  # beside the repository, not in it
    full_env = {k: v for k, v in os.environ.items() if k not in ("SMTP_HOST", "DISCOUNT_MODE")}
    full_env.update(env or {})
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--db", "data/shop.db",
                                 "--uploads", "data/uploads", "--config", "config/app.yaml"],
                                cwd=root, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"app.py exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if get(base + "/health") == (200, "ok\n"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"app.py did not answer /health:\n{log.read_text()}")
            time.sleep(0.05)
        yield base, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def request(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def get(url: str) -> tuple[int, str]:
    return request(url)


def set_discount_mode(root: Path, value: str) -> None:
    config = root / "config" / "app.yaml"
    text = config.read_text()
    old = f"discount_mode: {DEMO_BUG['buggy_value']}"
    assert old in text
    config.write_text(text.replace(old, f"discount_mode: {value}"))


def test_app_shows_the_bug_with_prods_setting_and_not_with_the_fix(demo_copy: Path) -> None:
    bug = DEMO_BUG["order_id"]
    with running_app(demo_copy) as (base, log):
        assert get(base + "/health") == (200, "ok\n")
        status, _ = get(f"{base}/orders/{bug}")
        assert status == DEMO_BUG["status"] == 500
        assert "amount must not be negative" in log.read_text()
        for other in DEMO_BUG["order_ids"]:
            assert get(f"{base}/orders/{other}")[0] == 500
        status, body = get(f"{base}/orders/{bug - 1}")
        assert status == 200 and json.loads(body)["id"] == bug - 1
    # the environment variable overrides the setting ...
    with running_app(demo_copy, {"DISCOUNT_MODE": DEMO_BUG["fixed_value"]}) as (base, _):
        assert get(f"{base}/orders/{bug}")[0] == 200
    # ... and the fix the README tells: one line of config/app.yaml
    set_discount_mode(demo_copy, DEMO_BUG["fixed_value"])
    with running_app(demo_copy) as (base, _):
        status, body = get(f"{base}/orders/{bug}")
        assert status == 200
        order = json.loads(body)
        assert order["discount_code"] == DEMO_BUG["discount_code"]
        assert order["discount_mode"] == DEMO_BUG["fixed_value"]
        assert float(order["total"]) > 0
        assert all(item["markdown_pct"] == DEMO_BUG["markdown_pct"] for item in order["items"])


def test_app_lists_orders_and_customers(demo_copy: Path) -> None:
    with running_app(demo_copy) as (base, _):
        status, body = get(base + "/orders?limit=5")
        assert status == 200
        assert [o["id"] for o in json.loads(body)] == list(range(ORDERS, ORDERS - 5, -1))
        assert get(base + "/orders?limit=0")[0] == 400
        assert get(base + "/orders?limit=many")[0] == 400
        assert get(base + "/orders/999999")[0] == 404
        status, body = get(base + "/customers/1")
        customer = json.loads(body)
        assert status == 200 and customer["id"] == 1 and "@" in customer["email"]
        assert customer["orders"] == query(demo_copy / "data" / "shop.db",
                                           "SELECT count(*) FROM orders WHERE customer_id = 1")[0][0]


def test_refund_changes_rows_files_a_credit_note_and_mails_only_a_local_sink(demo_copy: Path) -> None:
    oid = DEMO_BUG["refund_order_id"]
    db = demo_copy / "data" / "shop.db"
    refunds_before = query(db, "SELECT count(*) FROM refunds")[0][0]
    email = query(db, "SELECT c.email FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = ?", oid)[0][0]
    sink_port = free_port()
    folder = demo_copy.parent / "sink"
    config = demo_copy.parent / "edge.json"
    config.write_text(json.dumps({"mail": {"listen": ["127.0.0.1", sink_port], "folder": str(folder)}}))
    sink = subprocess.Popen([sys.executable, "-m", "workbench.edge", str(config)], stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            if folder.exists():
                break
            time.sleep(0.05)
        time.sleep(0.3)
        with running_app(demo_copy, {"SMTP_HOST": f"127.0.0.1:{sink_port}"}) as (base, _):
            status, body = request(f"{base}/orders/{oid}/refund", "POST", b'{"reason": "damaged"}')
            assert status == 200, body
            assert json.loads(body)["status"] == "refunded"
            assert request(f"{base}/orders/{oid}/refund", "POST")[0] == 409
        assert query(db, "SELECT status FROM orders WHERE id = ?", oid) == [("refunded",)]
        assert query(db, "SELECT count(*) FROM refunds")[0][0] == refunds_before + 1
        assert query(db, "SELECT reason FROM refunds WHERE order_id = ? ORDER BY id DESC LIMIT 1", oid) == [
            ("damaged",)]
        assert (demo_copy / "data" / "uploads" / "credit-notes" / f"CN-{oid:06d}.txt").is_file()
        box = Mailbox(folder)
        [mail] = box.list()
        assert mail.to == [email]
        message = box.get(mail.id)
        assert message.attachments == [f"CN-{oid:06d}.txt"] and f"CREDIT NOTE CN-{oid:06d}" in message.body
        assert git(demo_copy, "status", "--porcelain") == ""
        # prod's mail host is not on this machine: nothing is sent, and the log says so
        other = query(db, "SELECT id FROM orders WHERE status = 'paid' AND id > ? ORDER BY id LIMIT 1", oid)[0][0]
        with running_app(demo_copy, {"SMTP_HOST": "smtp.example.com"}) as (base, log):
            assert request(f"{base}/orders/{other}/refund", "POST")[0] == 200
            assert "NOT sent" in log.read_text()
        assert len(box.list()) == 1
    finally:
        sink.terminate()
        sink.wait(10)


def test_app_refuses_to_start_on_a_broken_config(demo_copy: Path) -> None:
    (demo_copy / "config" / "app.yaml").write_text("pricing:\n  discount_mode: sideways\n")
    done = subprocess.run([sys.executable, "app.py", "--port", str(free_port()), "--db", "data/shop.db"],
                          cwd=demo_copy, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "discount_mode" in done.stderr
    (demo_copy / "config" / "app.yaml").write_text("pricing:\n  modes: [a, b]\n")
    done = subprocess.run([sys.executable, "app.py", "--port", str(free_port()), "--db", "data/shop.db"],
                          cwd=demo_copy, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "config/app.yaml:2" in done.stderr
