"""repro.yaml: every error names the file, line and column and says how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.errors import InvalidInput
from workbench.spec import load_spec, parse_spec

GOOD = """\
name: shop
backend: local
prod: {branch: main}
services:
  web:
    command: python app.py --port {port} --db {stores.db.path}
    port: 8000
    env: {SMTP_HOST: smtp.example.com, DISCOUNT_MODE: floor}
    health: /health
stores:
  db: {type: sqlite, path: data/shop.db}
  uploads: {type: files, path: data/uploads}
clone:
  overrides:
    env: {SMTP_HOST: "127.0.0.1:1025"}
  scrub:
    db:
      users.email: email
      users.phone: null
      users.name: name
      main.users.note: {constant: redacted}
config_files: [config/*.yaml, .env]
"""


def test_the_documented_example_parses():
    spec = parse_spec(GOOD, Path("/ws"))
    assert spec.name == "shop" and spec.prod_branch == "main"
    web = spec.services["web"]
    assert web.port == 8000 and web.health.kind == "http" and web.health.path == "/health"
    assert spec.stores["db"].type == "sqlite" and spec.store_path(spec.stores["db"]) == Path("/ws/data/shop.db")
    assert spec.override_env == {"SMTP_HOST": "127.0.0.1:1025"}
    rules = {(r.table, r.column): (r.strategy, r.value) for r in spec.scrub_rules("db")}
    assert rules[("users", "phone")] == ("null", None)
    assert rules[("main.users", "note")] == ("constant", "redacted")
    assert spec.config_files == ["config/*.yaml", ".env"]


@pytest.mark.parametrize("text, where, words", [
    ("name: x\nservises: {}\n", "repro.yaml:2:1", "Did you mean 'services'"),
    ("name: x\nservices:\n  web:\n    comand: run\n", "repro.yaml:4:5", "Did you mean 'command'"),
    ("name: x\nservices:\n  web:\n    command: run\n    port: high\n", "repro.yaml:5:11", "port number"),
    ("name: x\nservices:\n  web:\n    command: run\n    port: 70000\n", "repro.yaml:5:11", "port number"),
    ("name: x\nstores:\n  db: {type: sqlit, path: a.db}\n", "repro.yaml:3:14", "Did you mean 'sqlite'"),
    ("name: x\nstores:\n  db: {type: sqlite}\n", "repro.yaml:3:3", "needs a 'path'"),
    ("name: x\nbackend: kubernetes\n", "repro.yaml:2:10", "local, docker"),
    ("name: x\nclone:\n  scrub:\n    db:\n      users.email: email\n", "repro.yaml:4:5", "not under 'stores'"),
    ("name: x\nstores:\n  db: {type: sqlite, path: a.db}\nclone:\n  scrub:\n    db:\n      users.email: emial\n",
     "repro.yaml:7:20", "Did you mean 'email'"),
    ("name: x\nstores:\n  db: {type: sqlite, path: a.db}\nclone:\n  scrub:\n    db:\n      email: email\n",
     "repro.yaml:7:7", "[schema.]table.column"),
    ("name: [x\n", "repro.yaml:2:1", "flow sequence that starts at line 1, column 7"),
    ("name: x\n  bad indent: 1\n", "repro.yaml:2:", "not valid YAML"),
    ("- a\n- b\n", "repro.yaml:1:1", "top level must be a mapping"),
    ("backend: local\n", "repro.yaml:1:1", "'name' is missing"),
    ("", "repro.yaml:1:1", "empty"),
    ("name: x\nservices:\n  web:\n    port: 80\n", "repro.yaml:", "needs a 'command'"),
    ("name: x\nservices:\n  web: {command: a, env: [1, 2]}\n", "repro.yaml:", "NAME=value"),
    ("name: x\nservices:\n  Web_1: {command: a}\n", "repro.yaml:3:3", "invalid service name"),
    ("name: x\nservices:\n  web:\n    command: python 'app.py {port}\n", "repro.yaml:4:14", "No closing quotation"),
    ("name: x\nservices:\n  web: {command: run}\nclone:\n  overrides:\n    services:\n      web:\n"
     "        command: 'run \"--fast'\n", "repro.yaml:8:18", "cannot be split into words"),
])
def test_errors_name_line_and_column(text, where, words):
    with pytest.raises(InvalidInput) as exc:
        parse_spec(text, Path("/ws"))
    full = str(exc.value)
    assert full.startswith(where), full
    assert words in full, full
    assert exc.value.code == 2


def test_not_utf8_and_missing_file(tmp_path):
    (tmp_path / "repro.yaml").write_bytes(b"name: caf\xe9\n")
    with pytest.raises(InvalidInput, match="not UTF-8"):
        load_spec(tmp_path)
    (tmp_path / "repro.yaml").unlink()
    with pytest.raises(InvalidInput, match="no repro.yaml"):
        load_spec(tmp_path)
