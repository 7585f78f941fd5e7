"""Secrets are never shown: a workspace full of secret-like values — in service settings, a
connection string, a config file, a .env file, a database column, a changed secret in the
clone, an app that prints its settings to its log — and every output searched for the raw
values: every command's text and JSON, errors, the journal's bytes, the logs as shown,
commit messages. The changed ones must still show *that* they differ (masked).
"""

from __future__ import annotations

import json
import socket
import sqlite3
import textwrap
from pathlib import Path

import pytest

from tests.conftest import git, run_cli
from workbench.backends.local import kill_services

SECRETS = {
    "DB_PASSWORD": "pw-Sup3rS3cret-1",
    "AWS_SECRET_ACCESS_KEY": "aws-Se4ret-Key-2",
    "GITHUB_TOKEN": "ghp-T0ken-Secr3t-3",
    "client_secret": "cs-Secr3t-4",
    "DATABASE_URL_PASSWORD": "dbpass-Secr3t-5",
    "SMTP_PASSWORD": "smtp-Secr3t-6",
    "config password": "cfg-Secr3t-7",
    "config url password": "url-Secr3t-8",
    ".env API_KEY": "apikey-Secr3t-9",
    ".env STRIPE_SECRET": "sk-Secr3t-10",
    "column api_token": "tok-Secr3t-15",
}
CHANGED = {
    "config password": "cfg-Changed-11",
    "DB_PASSWORD": "pw-Changed-12",
    ".env API_KEY": "apikey-Changed-13",
    "column api_token": "tok-Changed-14",
}
RAW = [*SECRETS.values(), *CHANGED.values()]

APP = '''\
"""A careless app: it prints its settings when it starts (so its log holds every secret)."""
import http.server, os, sys
for key in ("DB_PASSWORD", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "client_secret", "DATABASE_URL",
            "SMTP_PASSWORD"):
    print(f"{key}={os.environ.get(key)}", flush=True)
if os.environ.get("MODE") == "crash":
    print("fatal: cannot connect with", os.environ.get("DATABASE_URL"), os.environ.get("DB_PASSWORD"), flush=True)
    sys.exit(3)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()
'''


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _yaml(db_password: str, mode: str = "live") -> str:
    return textwrap.dedent(f"""\
        name: vault
        services:
          web:
            command: python app.py {{port}}
            port: {_port()}
            env:
              DB_PASSWORD: {db_password}
              AWS_SECRET_ACCESS_KEY: {SECRETS["AWS_SECRET_ACCESS_KEY"]}
              GITHUB_TOKEN: {SECRETS["GITHUB_TOKEN"]}
              client_secret: {SECRETS["client_secret"]}
              DATABASE_URL: postgres://app:{SECRETS["DATABASE_URL_PASSWORD"]}@db.internal:5432/shop
              MODE: {mode}
            health: tcp
        stores:
          db: {{type: sqlite, path: data/vault.db}}
        clone:
          overrides:
            env: {{SMTP_PASSWORD: {SECRETS["SMTP_PASSWORD"]}}}
        config_files: [config/*.yaml, .env]
        """)


def _config(password: str) -> str:
    return (f"database:\n  password: {password}\n  url: mysql://root:{SECRETS['config url password']}@localhost/db\n"
            "currency: EUR\n")


def _env_file(api_key: str) -> str:
    return f"API_KEY={api_key}\nSTRIPE_SECRET={SECRETS['.env STRIPE_SECRET']}\nDEBUG=0\n"


@pytest.fixture
def vault(tmp_path: Path):
    root = tmp_path / "vault"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "repro.yaml").write_text(_yaml(SECRETS["DB_PASSWORD"]))
    (root / "app.py").write_text(APP)
    (root / "config").mkdir()
    (root / "config" / "app.yaml").write_text(_config(SECRETS["config password"]))
    (root / ".env").write_text(_env_file(SECRETS[".env API_KEY"]))
    (root / ".gitignore").write_text("data/\n")
    (root / "data").mkdir()
    con = sqlite3.connect(root / "data" / "vault.db")
    con.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT, api_token TEXT)")
    con.execute("INSERT INTO accounts VALUES (1, 'shop', ?), (2, 'other', 'plain-value')",
                (SECRETS["column api_token"],))
    con.commit()
    con.close()
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "vault")
    yield root
    kill_services(root)


def _run(root: Path, *argv: str, code: int = 0) -> str:
    r = run_cli(*argv, cwd=root, input="")
    assert r.returncode == code, (argv, r.returncode, r.stderr)
    return r.stdout + r.stderr


def _assert_clean(where: str, text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    leaked = [v for v in RAW if v.encode() in data]
    assert not leaked, f"{where} shows {leaked}"


def test_no_output_shows_a_secret(vault):
    root = vault
    outputs: dict[str, str] = {}

    def run(*argv: str, code: int = 0) -> str:
        for extra in ((), ("--json",)):
            outputs[" ".join(argv + extra)] = out = _run(root, *argv, *extra, code=code)
        return out

    _run(root, "start", "prod", "--yes")
    _run(root, "fork", "prod", "b1")
    wt = root / ".repro" / "envs" / "b1"
    # the changed secrets of the clone: settings, config file, .env, a database column
    (wt / "repro.yaml").write_text(_yaml(CHANGED["DB_PASSWORD"]))
    (wt / "config" / "app.yaml").write_text(_config(CHANGED["config password"]))
    (wt / ".env").write_text(_env_file(CHANGED[".env API_KEY"]))
    con = sqlite3.connect(root / ".repro" / "data" / "b1" / "db" / "vault.db")
    con.execute("UPDATE accounts SET api_token=? WHERE id=1", (CHANGED["column api_token"],))
    con.commit()
    con.close()
    outputs["snapshot"] = _run(root, "snapshot", "b1", "s1")
    outputs["snapshot --json"] = _run(root, "snapshot", "b1", "s2", "--json")
    run("reset", "b1", "s1")
    run("reset", "b1", "--undo")
    for argv in (("list",), ("status", "prod"), ("status", "b1"), ("snapshots", "b1"), ("log",), ("log", "b1"),
                 ("logs", "b1"), ("logs", "prod"), ("diff", "prod", "b1"), ("diff", "b1", "prod"),
                 ("diff", "prod", "b1", "--include-scrubbed"), ("diff", "prod", "b1", "--only-unexpected"),
                 ("diff", "b1@forked", "b1"), ("diff", "b1@s1", "prod"), ("shell", "b1")):
        if argv[0] == "shell":
            outputs["shell b1 --json"] = _run(root, *argv, "--json")
        else:
            run(*argv)
    # the changed secrets show as changed, masked
    diff = json.loads(_run(root, "diff", "prod", "b1", "--json").split("\n\n")[0])
    text = json.dumps(diff)
    for key in ("DB_PASSWORD", "password", "API_KEY", "api_token"):
        assert key in text, f"the diff does not say that {key} differs"
    assert "<secret:" in text
    # a promote whose message quotes a secret is refused (naming where the secret is declared),
    # not altered; then one without it, and its commit message
    refused = _run(root, "promote", "b1", "-m", f"Rotate the password {CHANGED['DB_PASSWORD']}", "--json", code=2)
    assert "commit message holds the value of" in refused and "DB_PASSWORD" in refused, refused
    outputs["promote refused"] = refused
    run_promote = _run(root, "promote", "b1", "-m", "Rotate the database password", "--json")
    outputs["promote"] = run_promote
    outputs["git log"] = git(root, "log", "--all", "--format=%B")
    # an error whose message carries the last lines of a log full of secrets
    (wt / "repro.yaml").write_text(_yaml(CHANGED["DB_PASSWORD"], mode="crash"))
    for argv in (("reset", "b1", "forked"), ("start", "b1", "--json")):
        outputs[" ".join(argv)] = err = _run(root, *argv, code=1)
        assert "exited with code 3" in err and "fatal: cannot connect" in err  # the log's tail is shown
    outputs["journal after the failure"] = _run(root, "log", "--json")
    for where, text in outputs.items():
        _assert_clean(where, text)
    for db in sorted((root / ".repro").glob("state.db*")):
        _assert_clean(f"the journal's bytes ({db.name})", db.read_bytes())


def test_the_promote_preview_the_screen_shows_masks_secrets(vault):
    from workbench.workspace import Workspace

    _run(vault, "fork", "prod", "b1")
    wt = vault / ".repro" / "envs" / "b1"
    (wt / "config" / "app.yaml").write_text(_config(CHANGED["config password"]))
    (wt / ".env").write_text(_env_file(CHANGED[".env API_KEY"]))
    (wt / "repro.yaml").write_text(_yaml(CHANGED["DB_PASSWORD"]))
    ws = Workspace(vault)
    try:
        files, text = ws.promote_preview("b1")
    finally:
        ws.close()
    assert sorted(files) == [".env", "config/app.yaml", "repro.yaml"]
    _assert_clean("the promote preview", text)
    assert "<secret:" in text
