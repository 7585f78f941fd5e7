"""Hostile input against the three promises — prod is never written, no secret is shown, a
clone stays inside its own folders — by the classes of attack a careless or hostile user
tries: secrets under innocent names, links planted in a clone's data, settings that lead
a clone's service out of it, alias bombs, and a machine that refuses (permissions, no git,
a read-only state). Each test proves prod's bytes, modes and folder listing unchanged and
searches every output and every file repro-tui owns for every secret value.

RELIABILITY.md has the table of attacks and outcomes.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import git, run_cli

UPSTREAM_KEY = "upk-7Hq2-Innocent-Name"      # config/app.yaml upstream.api_key (nested)
DB_URL_PASSWORD = "dbu-Pa55-In-A-Url"          # .env DATABASE_URL's password
LIST_TOKEN = "lst-T0k3n-Under-tokens"          # config/app.yaml tokens: [ ... ] (a list item)
PEM_LINE = "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu"
LOG_PASSWORD = "lgp-W4rn1ng-R00t"              # printed by the app as WARNING:root:password=...
BEARER = "brr-eyJhbGciOi-Bearer-Token"         # an Authorization header the app logs
SECRETS = [UPSTREAM_KEY, DB_URL_PASSWORD, LIST_TOKEN, PEM_LINE, LOG_PASSWORD, BEARER]

APP = f'''\
import http.server, logging, os, sys
logging.warning("password={LOG_PASSWORD}")
print("upstream key in use:", open("config/app.yaml").read().split("api_key: ")[1].split()[0], flush=True)
print("connecting to", os.environ.get("DATABASE_URL"), flush=True)
print("Authorization: Bearer {BEARER}", flush=True)
if os.environ.get("MODE") == "crash":
    sys.exit(3)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()
'''

CONFIG = f"""\
upstream:
  url: https://api.example.test
  api_key: {UPSTREAM_KEY}
tokens:
  - {LIST_TOKEN}
signing:
  private_key: |
    -----BEGIN RSA PRIVATE KEY-----
    {PEM_LINE}
    -----END RSA PRIVATE KEY-----
currency: EUR
"""


def _prod_state(root: Path) -> dict[str, tuple]:
    """prod as a user would check it: every file's bytes and mode, every folder's mode and
    listing (repro-tui's own folder and git's left out)."""
    out: dict[str, tuple] = {}
    for dirpath, dirs, files in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirs[:] = sorted(d for d in dirs if not (rel_dir == "." and d in (".repro", ".git")))
        st = os.lstat(dirpath)
        out[rel_dir + "/"] = (stat.S_IMODE(st.st_mode), tuple(sorted(dirs + files)))
        for name in files:
            p = Path(dirpath) / name
            st = os.lstat(p)
            body = os.readlink(p) if p.is_symlink() else p.read_bytes()
            out[os.path.normpath(os.path.join(rel_dir, name))] = (stat.S_IMODE(st.st_mode), body)
    return out


def _owned_bytes(root: Path) -> list[tuple[str, bytes]]:
    """Every file repro-tui owns in the workspace (its state, logs, clones' folders, data)."""
    out = []
    for p in sorted((root / ".repro").rglob("*")):
        if p.is_file() and not p.is_symlink() and ".git" not in p.parts:
            out.append((str(p.relative_to(root)), p.read_bytes()))
    return out


def _leaks(text: str | bytes, values: list[str] = SECRETS) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [v for v in values if v.encode() in data]


@pytest.fixture
def hostile(shop: Path):
    """The test shop with secrets under innocent names: a nested api_key and a list of tokens
    and a private key in its config file, a password inside DATABASE_URL in .env, and an app
    that prints them to its log (as Python's logging does, and an Authorization header)."""
    (shop / "app.py").write_text(APP)
    (shop / "config" / "app.yaml").write_text(CONFIG)
    (shop / ".env").write_text(f"DATABASE_URL=postgresql://shop:{DB_URL_PASSWORD}@db.internal/shop\nDEBUG=0\n")
    text = (shop / "repro.yaml").read_text()
    text = text.replace("command: python -m http.server {port} --bind 127.0.0.1", "command: python app.py {port}")
    text = text.replace("MODE: live}", "MODE: live, DATABASE_URL: \"postgresql://shop:" + DB_URL_PASSWORD
                        + "@db.internal/shop\"}")
    text = text.replace("config_files: [config/*.yaml]", "config_files: [config/*.yaml, .env]")
    (shop / "repro.yaml").write_text(text)
    git(shop, "add", "-A")
    git(shop, "commit", "-q", "-m", "hostile shop")
    return shop


def _cli(root: Path, *argv: str, code: int | None = 0) -> str:
    r = run_cli(*argv, cwd=root, input="")
    if code is not None:
        assert r.returncode == code, (argv, r.returncode, r.stdout, r.stderr)
    return r.stdout + r.stderr


# --- secrets: known by value, whatever their names, masked everywhere ------------------------

def test_secrets_under_innocent_names_are_masked_in_every_output_and_file(hostile):
    root = hostile
    before = _prod_state(root)
    outputs = {"fork": _cli(root, "fork", "prod", "b1")}
    for argv in (("logs", "b1"), ("logs", "b1", "--json"), ("log", "--json"), ("list", "--json"),
                 ("status", "b1"), ("diff", "prod", "b1"), ("diff", "prod", "b1", "--json")):
        outputs[" ".join(argv)] = _cli(root, *argv)
    # the app's log, as it is shown: every shape masked, the masks whole (never nested)
    shown = outputs["logs b1"]
    assert "WARNING:root:password=<secret:" in shown and "Authorization: <secret:" in shown, shown
    assert "<secret:<secret:" not in "".join(outputs.values())
    # the clone's changed secrets: a new nested key, a new list item and a new private key
    wt = root / ".repro" / "envs" / "b1"
    changed = CONFIG.replace(UPSTREAM_KEY, "upk-Changed-In-Clone").replace(LIST_TOKEN, "lst-Changed-In-Clone")
    changed = changed.replace(PEM_LINE, PEM_LINE[::-1])
    (wt / "config" / "app.yaml").write_text(changed)
    values = [*SECRETS, "upk-Changed-In-Clone", "lst-Changed-In-Clone", PEM_LINE[::-1]]
    outputs["diff after"] = _cli(root, "diff", "prod", "b1", "--json")
    # the promote preview the screen shows
    from workbench.workspace import Workspace

    ws = Workspace(root)
    try:
        files, preview = ws.promote_preview("b1")
    finally:
        ws.close()
    assert files == ["config/app.yaml"] and "api_key" in preview
    outputs["promote preview"] = preview
    # a failed start's log tail, and the journal that records it
    (wt / "repro.yaml").write_text((wt / "repro.yaml").read_text().replace("MODE: live", "MODE: crash"))
    outputs["reset fails"] = _cli(root, "reset", "b1", code=1)
    assert "exited with code 3" in outputs["reset fails"]
    outputs["log after"] = _cli(root, "log", "--json")
    # a promote whose message holds a secret is refused, naming where the secret is declared
    refused = _cli(root, "promote", "b1", "-m", f"use key {UPSTREAM_KEY}", code=2)
    assert "commit message holds the value of" in refused and "upstream.api_key in config/app.yaml" in refused, \
        refused
    outputs["promote refused"] = refused
    for where, text in outputs.items():
        assert not _leaks(text, values), (where, _leaks(text, values))
    for name, data in _owned_bytes(root):
        if name.startswith(".repro/envs/") or name.startswith(".repro/cache/"):
            continue   # the clone's own worktree holds its config files, as prod's checkout does
        assert not _leaks(data, values), (name, _leaks(data, values))
    assert _prod_state(root) == before


def test_a_dotenv_with_a_multi_line_key_still_teaches_its_secrets(hostile):
    """A ``.env`` holding a private key over several lines in quotes (as dotenv allows) could
    not be read, so none of its secret values were known: a payment key the app printed bare
    reached ``logs`` raw. Every value of the file is learned; a comment after a quoted value
    too."""
    root = hostile
    payment, changed = "pay-Zq8vN3mLp0Xr-Bare", "pay-Changed-In-Clone"
    env = (root / ".env").read_text() + (
        'SIGNING_KEY="-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5\n'
        '-----END EC PRIVATE KEY-----"\n'
        f"PAYMENT_API_KEY='{payment}'   # the live one\n")
    (root / ".env").write_text(env)
    (root / "app.py").write_text((root / "app.py").read_text().replace(
        "import http.server, logging, os, sys\n",
        "import http.server, logging, os, sys\n"
        "print('charging with', open('.env').read().split('PAYMENT_API_KEY=')[1].split()[0].strip(\"'\"),"
        " flush=True)\n"))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "a signing key and a payment key")
    out = _cli(root, "fork", "prod", "b1")
    out += _cli(root, "logs", "b1")
    assert "charging with <secret:" in out, out
    wt = root / ".repro" / "envs" / "b1"
    (wt / ".env").write_text((wt / ".env").read_text().replace(payment, changed))
    out += _cli(root, "diff", "prod", "b1") + _cli(root, "diff", "prod", "b1", "--json")
    assert "PAYMENT_API_KEY" in out
    assert not _leaks(out, [payment, changed, "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5"]), out


def test_the_diff_masks_credentials_by_their_shape(hostile):
    root = hostile
    _cli(root, "fork", "prod", "b1")
    wt = root / ".repro" / "envs" / "b1"
    shaped = {
        "libpq": "host=db user=app password=lq-Secr3t-1 dbname=shop",
        "query": "https://api.example.test/v1?user=a&password=qs-Secr3t-2&x=1",
        "header": "Authorization: Bearer hd-Secr3t-3",
        "aws": "AKIAQ7EXAMPLE0SECRET",
        "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sg-Secr3t-4-abcdef",
        "github": "ghp_" + "x" * 36,
        "stripe": "sk_live_" + "y" * 24,
    }
    (wt / "config" / "app.yaml").write_text(CONFIG + "".join(f"{k}: \"{v}\"\n" for k, v in shaped.items()))
    text = (wt / "repro.yaml").read_text().replace("command: python app.py {port}",
                                                    "command: python app.py {port} --upstream "
                                                    "https://svc:cmd-Secr3t-5@upstream.test/")
    (wt / "repro.yaml").write_text(text)
    secrets = ["lq-Secr3t-1", "qs-Secr3t-2", "hd-Secr3t-3", "AKIAQ7EXAMPLE0SECRET", "sg-Secr3t-4", "x" * 36,
               "y" * 24, "cmd-Secr3t-5"]
    for argv in (("diff", "prod", "b1"), ("diff", "prod", "b1", "--json"), ("diff", "prod", "b1", "--only-unexpected")):
        out = _cli(root, *argv)
        assert not _leaks(out, secrets), (argv, _leaks(out, secrets))
    doc = json.loads(_cli(root, "diff", "prod", "b1", "--json"))
    paths = {c["path"] for c in doc["config"]}
    assert {f"config/app.yaml:{k}" for k in shaped} <= paths   # each still shows as changed


# --- private state -----------------------------------------------------------------------------

def test_the_workspace_state_carries_no_permission_for_other_users(hostile):
    root = hostile
    _cli(root, "fork", "prod", "b1")
    repro = root / ".repro"
    assert stat.S_IMODE(repro.stat().st_mode) & 0o007 == 0
    for p in [repro / "state.db", *repro.glob("state.db*"), *(repro / "run" / "b1").glob("*.log"),
              *(repro / "data" / "b1" / "db").glob("*")]:
        assert stat.S_IMODE(p.stat().st_mode) & 0o007 == 0, (p, oct(p.stat().st_mode))
    # prod's own files keep the modes they had (a repro-tui command changes none)
    before = _prod_state(root)
    _cli(root, "snapshot", "b1", "s1")
    _cli(root, "reset", "b1")
    assert _prod_state(root) == before


# --- links and settings that would lead a clone out of itself ------------------------------------

def test_a_clone_store_replaced_by_a_link_to_prods_file_is_refused(hostile):
    root = hostile
    _cli(root, "fork", "prod", "b1")
    before = _prod_state(root)
    live = root / ".repro" / "data" / "b1" / "db" / "shop.db"
    live.unlink()
    live.symlink_to(root / "data" / "shop.db")
    for argv in (("snapshot", "b1", "s1"), ("diff", "prod", "b1"), ("stop", "b1"), ("start", "b1")):
        out = _cli(root, *argv, code=None)
        if argv[0] == "stop":
            continue
        assert "outside b1's own folders" in out or "refusing" in out, (argv, out)
    assert not (root / ".repro" / "snapshots" / "b1" / "s1").exists()
    assert _prod_state(root) == before
    # the whole folder made a link is refused too
    folder = live.parent
    shutil.rmtree(folder)
    folder.symlink_to(root / "data")
    out = _cli(root, "snapshot", "b1", "s2", code=1)
    assert "outside b1's own folders" in out
    assert _prod_state(root) == before


def test_a_clone_store_replaced_by_a_hard_link_to_prods_file_is_refused(hostile):
    """A hard link is no link to resolve: the clone's path is its own, but its bytes are
    prod's file. Snapshot, diff and start refuse it; prod's bytes stay as they were."""
    root = hostile
    _cli(root, "fork", "prod", "b1")
    _cli(root, "stop", "b1")
    before = _prod_state(root)
    live = root / ".repro" / "data" / "b1" / "db" / "shop.db"
    live.unlink()
    os.link(root / "data" / "shop.db", live)
    for argv in (("snapshot", "b1", "s1"), ("diff", "prod", "b1"), ("start", "b1")):
        out = _cli(root, *argv, code=1)
        assert "same file as prod's" in out and "hard link" in out, (argv, out)
    assert not (root / ".repro" / "snapshots" / "b1" / "s1").exists()
    assert _prod_state(root) == before
    # the way out the message gives: the link removed, a reset brings the clone's own data back
    live.unlink()
    _cli(root, "reset", "b1")
    assert live.stat().st_ino != (root / "data" / "shop.db").stat().st_ino
    _cli(root, "snapshot", "b1", "s1")
    assert _prod_state(root) == before


@pytest.mark.parametrize("cwd", ["../../..", "/", "../../../data"])
def test_a_clone_service_cannot_be_sent_into_prods_checkout(hostile, cwd):
    root = hostile
    _cli(root, "fork", "prod", "b1")
    before = _prod_state(root)
    wt = root / ".repro" / "envs" / "b1"
    text = (wt / "repro.yaml").read_text().replace("    health: tcp", f"    health: tcp\n    cwd: \"{cwd}\"")
    (wt / "repro.yaml").write_text(text)
    out = _cli(root, "reset", "b1", code=None)
    assert "leads outside its worktree" in out or "outside b1's own folders" in out, out
    listed = json.loads(run_cli("list", "--json", cwd=root).stdout)
    assert [e["state"] for e in listed if e["name"] == "b1"] != ["running"]
    assert _prod_state(root) == before


@pytest.mark.parametrize("how", ["--db=ABS", "sqlite:///REL", "setting ABS", "setting sqlite:////ABS",
                                 "setting a:REL,b"])
def test_a_clone_command_naming_prods_data_is_refused(hostile, how):
    """prod's database named in a clone's command or in a setting its service is given: as a
    path, after ``=``, as a URL (absolute or relative to the worktree), inside a list."""
    root = hostile
    _cli(root, "fork", "prod", "b1")
    before = _prod_state(root)
    wt = root / ".repro" / "envs" / "b1"
    value = how.removeprefix("setting ").replace("ABS", str(root / "data" / "shop.db").lstrip("/")
                                                 if "////" in how else str(root / "data" / "shop.db"))
    value = value.replace("REL", "../../../data/shop.db")
    text = (wt / "repro.yaml").read_text()
    if how.startswith("setting "):
        text = text.replace("MODE: live,", f'MODE: live, DB_PATH: "{value}",')
    else:
        text = text.replace("command: python app.py {port}", f"command: python app.py {{port}} {value}")
    assert text != (wt / "repro.yaml").read_text()
    (wt / "repro.yaml").write_text(text)
    out = _cli(root, "reset", "b1", code=1)
    assert "prod's, not b1's" in out, out
    assert _prod_state(root) == before


def test_promote_refuses_a_link_that_leaves_the_worktree_and_the_diff_shows_it(hostile):
    root = hostile
    _cli(root, "fork", "prod", "b1")
    before = _prod_state(root)
    wt = root / ".repro" / "envs" / "b1"
    (wt / "config" / "app.yaml").unlink()
    (wt / "config" / "app.yaml").symlink_to(root / "config" / "app.yaml")   # prod's own file
    doc = json.loads(_cli(root, "diff", "prod", "b1", "--json"))
    assert any(c["path"] == "config/app.yaml (link)" for c in doc["config"]), doc["config"]
    out = _cli(root, "promote", "b1", "-m", "Share the config", "--merge", code=1)
    assert "links that lead out of b1's worktree" in out and "config/app.yaml" in out
    assert _prod_state(root) == before
    assert git(root, "log", "-1", "--format=%s", "main") == "hostile shop"


def test_destroy_never_changes_the_mode_of_what_a_planted_link_points_at(hostile):
    root = hostile
    _cli(root, "fork", "prod", "b1")
    data = root / ".repro" / "data" / "b1" / "uploads"
    trap = data / "trap"
    trap.mkdir()
    (trap / "to-prod").symlink_to(root / "data")           # a link into prod's data folder
    (trap / "to-config").symlink_to(root / "config" / "app.yaml")
    trap.chmod(0o500)                                       # read-only: deleting needs a chmod
    before = _prod_state(root)
    _cli(root, "destroy", "b1", "--yes", "--force")
    assert _prod_state(root) == before
    assert not (root / ".repro" / "data" / "b1").exists()
    _cli(root, "start", "prod", "--yes")   # prod still starts (after the confirmation prod needs)
    _cli(root, "stop", "prod", "--yes")


def test_a_files_store_link_into_prods_checkout_becomes_a_copy_in_the_clone(hostile):
    root = hostile
    (root / "data" / "uploads" / "terms").symlink_to(root / "config" / "app.yaml")
    before = _prod_state(root)
    _cli(root, "fork", "prod", "b1")
    copy = root / ".repro" / "data" / "b1" / "uploads" / "terms"
    assert copy.is_file() and not copy.is_symlink()
    copy.write_text("changed in the clone")
    assert _prod_state(root) == before
    _cli(root, "snapshot", "b1", "s1")


# --- input limits ----------------------------------------------------------------------------

def test_an_alias_bomb_is_refused_at_once(hostile):
    root = hostile
    anchors = "".join(f"x{i}: &a{i} [{', '.join(['*a' + str(i - 1)] * 10)}]\n" for i in range(1, 10))
    text = "name: shop\nbackend: local\nx0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + anchors
    text += "services:\n  web:\n    command: *a9\n"          # 600 bytes that stand for 10^10 words
    assert len(text) < 1000
    (root / "repro.yaml").write_text(text)
    t0 = time.monotonic()
    out = _cli(root, "list", code=2)
    assert time.monotonic() - t0 < 20
    assert "aliases" in out and "expand" in out, out


def test_a_list_where_a_word_is_wanted_is_refused(hostile):
    root = hostile
    text = (root / "repro.yaml").read_text().replace("command: python app.py {port}",
                                                     "command: [python, [app.py, x], \"{port}\"]")
    (root / "repro.yaml").write_text(text)
    out = _cli(root, "list", code=2)
    assert "repro.yaml:" in out and "'command'" in out and "item 2 is a list" in out, out


# --- a machine that refuses ------------------------------------------------------------------

def test_a_data_folder_that_cannot_be_written_is_one_line_naming_it(hostile):
    root = hostile
    _cli(root, "fork", "prod", "b1")
    folder = root / ".repro" / "snapshots"
    if os.geteuid() != 0:
        folder.chmod(0o500)
        out = _cli(root, "snapshot", "b1", "s1", code=1)
        folder.chmod(0o770)
        assert "permission denied" in out and "snapshots" in out, out
    # what root meets too: something in the way of the folder
    shutil.rmtree(folder)
    folder.write_text("not a folder")
    out = _cli(root, "snapshot", "b1", "s1", code=1)
    assert "Traceback" not in out and "bug" not in out and "snapshots" in out, out
    assert len(out.strip().splitlines()) <= 2, out


def test_without_git_or_without_a_repository_the_error_says_what_to_do(hostile, tmp_path):
    root = hostile
    bare = tmp_path / "nogit"
    bare.mkdir()
    (bare / "repro.yaml").write_text("name: lone\n")
    out = _cli(bare, "list", code=1)
    assert "is not a git repository" in out and "git init" in out and "bug" not in out, out
    # no git executable on PATH: python stays reachable, git does not
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {**os.environ, "PATH": str(bin_dir), "PYTHONPATH": str(Path(__file__).parents[1])}
    r = subprocess.run([sys.executable, "-m", "workbench", "fork", "prod", "b1"], cwd=root, capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 1, r.stderr
    assert "git is not installed" in r.stderr and "bug" not in r.stderr and "Traceback" not in r.stderr


def test_a_recovery_that_cannot_finish_says_so_and_exits_1(hostile):
    root = hostile
    _cli(root, "fork", "prod", "b1")
    # a snapshot cut off half way leaves a pending journal entry ...
    r = run_cli("snapshot", "b1", "s1", cwd=root, env={"REPRO_FAULT": "snapshot:snapshot s1"})
    assert r.returncode != 0
    # ... whose rollback cannot run now (something stands where its lock folder goes)
    ready = root / ".repro" / "ready"
    shutil.rmtree(ready, ignore_errors=True)
    ready.write_text("in the way")
    out = _cli(root, "recover", code=1)
    assert "could not be recovered yet" in out and "repro-tui recover" in out, out
    out = _cli(root, "list")
    assert "warning: snapshot of b1 had been cut off and could not be recovered yet" in out, out
    assert "it was rolled back" not in out
    ready.unlink()
    out = _cli(root, "recover")
    assert "snapshot of b1 had been cut off; it was rolled back" in out, out


def test_a_read_only_state_is_one_line_naming_it(hostile):
    root = hostile
    _cli(root, "fork", "prod", "b1")
    repro = root / ".repro"
    if os.geteuid() != 0:
        pytest.skip("a read-only mount of the state needs root (CI runs this test as root)")
    made = subprocess.run(["mount", "--bind", "-o", "ro", str(repro), str(repro)], capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"cannot mount here ({made.stderr.strip()}); CI runs this test as root")
    subprocess.run(["mount", "-o", "remount,ro,bind", str(repro)], capture_output=True)
    try:
        for argv in (("snapshot", "b1", "s1"), ("list",)):
            r = run_cli(*argv, cwd=root)
            if argv[0] == "list" and r.returncode == 0:
                continue   # a reader may still read it
            assert r.returncode == 1, (argv, r.stderr)
            assert "read-only" in r.stderr and ".repro" in r.stderr and "bug" not in r.stderr, r.stderr
            assert len(r.stderr.strip().splitlines()) <= 2, r.stderr
    finally:
        subprocess.run(["umount", "-l", str(repro)], capture_output=True)
    _cli(root, "snapshot", "b1", "s1")


def test_a_workspace_whose_path_has_spaces_quotes_a_dollar_and_accents(shop, tmp_path):
    """A workspace under a folder named ``on call's "dir" $HOME é``: git was asked to expand
    ``$HOME`` in it (GitPython's default) and every command said the workspace was not a git
    repository. The whole loop works there, the service gets the clone's path whole."""
    root = tmp_path / "on call's \"dir\" $HOME é"
    shutil.copytree(shop, root, symlinks=True)
    text = (root / "repro.yaml").read_text()
    app = ("import sys, pathlib, http.server; pathlib.Path('got-db-path').write_text(sys.argv[2]); "
           "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), "
           "http.server.SimpleHTTPRequestHandler).serve_forever()")
    (root / "serve.py").write_text(app + "\n")
    text = text.replace("command: python -m http.server {port} --bind 127.0.0.1",
                        "command: python serve.py {port} {stores.db.path}")
    assert text != (root / "repro.yaml").read_text()
    (root / "repro.yaml").write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "a service told its database")
    before = _prod_state(root)
    _cli(root, "fork", "prod", "b1")
    got = (root / ".repro" / "envs" / "b1" / "got-db-path").read_text()   # written in its worktree
    assert got.startswith(str(root)) and got.endswith("shop.db") and "/.repro/data/b1/" in got
    _cli(root, "snapshot", "b1", "s1")
    _cli(root, "reset", "b1")
    assert "db.users" in _cli(root, "diff", "prod", "b1")
    _cli(root, "destroy", "b1", "--yes")
    assert _prod_state(root) == before


def test_values_holding_terminal_controls_reach_the_terminal_escaped(shop):
    """A value of the data or a config file holding terminal controls (an OSC 52 that writes
    the clipboard, a clear-screen, an 8-bit CSI) is shown escaped by the diff, as text and
    as JSON: printing it never drives the user's terminal."""
    import sqlite3

    root = shop
    _cli(root, "fork", "prod", "b1")
    hostile_value = "\x1b]52;c;ZWNobyBoaQ==\x07\x1b[2J\x9b2J\rOK"
    conn = sqlite3.connect(root / ".repro" / "data" / "b1" / "db" / "shop.db")
    conn.execute("UPDATE orders SET status = ? WHERE id = 42", (hostile_value,))
    conn.commit()
    conn.close()
    (root / ".repro" / "envs" / "b1" / "config" / "app.yaml").write_text('title: "\\e[31mred\\u009b2J"\n')
    text = _cli(root, "diff", "prod", "b1")
    raw = _cli(root, "diff", "prod", "b1", "--json")
    for out in (text, raw):
        assert not any(ch in out for ch in "\x1b\x07\x9b\r"), repr(out)
    assert "db.orders[42].status" in text and "\\x1b]52" in text
    shown = [c for c in json.loads(raw)["data"] if c.get("path", "").endswith("[42].status")]
    assert shown and shown[0]["right"] == hostile_value


def test_a_clone_repro_yaml_broken_in_its_worktree_cuts_nothing_off(shop):
    """A clone's repro.yaml broken while someone edits it: every operation that reads the
    clone's services says so and changes nothing (a reset and a snapshot were cut off half
    way, and every later command warned that recovery could not finish); a promote refuses
    to commit it (merged, it would stop every command on prod's branch); destroy still
    removes the clone; the other clones are untouched."""
    root = shop
    for name in ("b1", "b2"):
        _cli(root, "fork", "prod", name)
    before = _prod_state(root)
    (root / ".repro" / "envs" / "b1" / "repro.yaml").write_text("name: [x\n")
    for argv in (("reset", "b1"), ("reset", "b1", "--undo"), ("snapshot", "b1", "s1"), ("start", "b1"),
                 ("stop", "b1"), ("restart", "b1")):
        out = _cli(root, *argv, code=None)
        assert "not valid YAML" in out and "Fix the repro.yaml in the clone's worktree" in out, (argv, out)
        assert "This is a bug" not in out
    out = _cli(root, "promote", "b1", "-m", "half an edit", code=1)
    assert "refusing to commit repro.yaml: it does not load" in out, out
    out = _cli(root, "list")
    assert "cut off" not in out and "could not be recovered" not in out, out
    assert json.loads(run_cli("log", "--json", cwd=root).stdout)[0]["outcome"] != "pending"
    out = _cli(root, "snapshot", "b2", "s1")    # another clone: as ever
    assert "could not be recovered" not in out
    _cli(root, "destroy", "b1", "--force", "--yes")
    assert not (root / ".repro" / "envs" / "b1").exists()
    assert _prod_state(root) == before


def test_a_clone_folder_deleted_by_hand_is_said_or_brought_back(shop):
    """``rm -rf`` of a clone's data folder: a reset brings the snapshot back (it stopped half
    way, "no such file or folder", and recovery could not finish). ``rm -rf`` of its
    worktree: an operation that runs its services says so and what to do; destroy works."""
    root = shop
    for name in ("b1", "b2"):
        _cli(root, "fork", "prod", name)
    before = _prod_state(root)
    shutil.rmtree(root / ".repro" / "data" / "b2")
    out = _cli(root, "diff", "prod", "b2", code=1)
    assert "does not exist" in out and "repro-tui reset" in out, out
    out = _cli(root, "reset", "b2")
    assert "b2 reset to forked" in out
    assert "db.users" in _cli(root, "diff", "prod", "b2")      # the data is there again
    shutil.rmtree(root / ".repro" / "envs" / "b1")
    for argv in (("reset", "b1"), ("start", "b1"), ("snapshot", "b1", "s1")):
        out = _cli(root, *argv, code=1)
        assert "b1's worktree" in out and "is gone" in out and "repro-tui destroy b1 --force" in out, (argv, out)
    out = _cli(root, "list")
    assert "cut off" not in out and "could not be recovered" not in out, out
    _cli(root, "destroy", "b1", "--force", "--yes")
    _cli(root, "snapshot", "b2", "s1")
    assert _prod_state(root) == before
