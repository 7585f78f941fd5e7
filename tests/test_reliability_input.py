"""Bad input: a corpus of command lines and repro.yaml files, each with the exit code and the
words its error must say; a 50 MB and a non-UTF-8 config file for the diff; and the
repro.yaml loader fuzzed with hypothesis.

The rules every case follows: never a traceback (nor the "this is a bug" line of an
unexpected error); exit 2 for invalid input, 1 for a valid request that cannot be done;
an error of at most a few lines on stderr, and ``{"error": {...}}`` on stdout with --json.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import free_port, git, make_shop_db, run_cli
from tests.shop import shop_yaml
from workbench.backends.local import kill_services
from workbench.errors import InvalidInput
from workbench.spec import TOP_KEYS, Spec, parse_spec

NAME_HINT = "invalid environment name"

# (id, argv, exit code, words the error says) -- run against a workspace with a clone b1
COMMAND_CASES: list[tuple[str, tuple[str, ...], int, tuple[str, ...]]] = [
    ("name-slash", ("fork", "prod", "a/b"), 2, (NAME_HINT, "'/'")),
    ("name-dotdot", ("fork", "prod", ".."), 2, (NAME_HINT, "lower-case letter")),
    ("name-two-dots", ("fork", "prod", "a..b"), 2, (NAME_HINT, "'.'")),
    ("name-space", ("fork", "prod", "my env"), 2, (NAME_HINT, "' '")),
    ("name-control-char", ("fork", "prod", "bad\x01name"), 2, (NAME_HINT, "\\x01")),
    ("name-newline", ("fork", "prod", "b2\n"), 2, (NAME_HINT, "\\n")),
    ("name-escape", ("fork", "prod", "b2\x1b[31m"), 2, (NAME_HINT,)),
    ("name-leading-dash", ("fork", "prod", "-x"), 2, ("required", "name")),
    ("name-leading-dash-after-separator", ("fork", "prod", "--", "-x"), 2, (NAME_HINT, "lower-case letter")),
    ("name-300-chars", ("fork", "prod", "a" * 300), 2, (NAME_HINT, "too long", "300")),
    ("name-33-chars", ("fork", "prod", "a" * 33), 2, ("too long", "at most 32")),
    ("name-empty", ("fork", "prod", ""), 2, ("a name is needed",)),
    ("name-upper-head", ("fork", "prod", "HEAD"), 2, (NAME_HINT,)),
    ("name-ref-lock", ("fork", "prod", "x.lock"), 2, (NAME_HINT, "'.'")),
    ("name-ref-reflog", ("fork", "prod", "@{u}"), 2, (NAME_HINT,)),
    ("name-ref-colon", ("fork", "prod", "a:b"), 2, (NAME_HINT, "':'")),
    ("name-ref-tilde", ("fork", "prod", "a~1"), 2, (NAME_HINT, "'~'")),
    ("name-ref-caret", ("fork", "prod", "a^"), 2, (NAME_HINT, "'^'")),
    ("name-ref-glob", ("fork", "prod", "a*"), 2, (NAME_HINT, "'*'")),
    ("name-backslash", ("fork", "prod", "a\\b"), 2, (NAME_HINT,)),
    ("name-unicode", ("fork", "prod", "ünï"), 2, (NAME_HINT,)),
    ("name-prod-reserved", ("fork", "prod", "prod"), 2, ("reserved",)),
    ("name-prod-from-clone", ("fork", "b1", "prod"), 2, ("reserved",)),
    ("name-taken", ("fork", "prod", "b1"), 1, ("exists already", "destroy")),
    ("source-unknown", ("fork", "nosuch", "z1"), 1, ("no environment named 'nosuch'", "repro-tui list")),
    ("source-prod-snapshot", ("fork", "prod@s1", "z1"), 2, ("prod has no snapshots",)),
    ("source-missing-snapshot", ("fork", "b1@", "z1"), 2, ("missing after '@'",)),
    ("source-unknown-snapshot", ("fork", "b1@nosuch", "z1"), 1, ("no snapshot named 'nosuch'",)),
    ("source-bad-snapshot", ("fork", "b1@../x", "z1"), 2, ("invalid snapshot name",)),
    ("snapshot-reserved", ("snapshot", "b1", "forked"), 2, ("forked",)),
    ("snapshot-slash", ("snapshot", "b1", "s/1"), 2, ("invalid snapshot name", "'/'")),
    ("snapshot-unknown-env", ("snapshot", "nosuch"), 1, ("no environment named",)),
    ("snapshot-delete-forked", ("snapshot", "b1", "--delete", "forked"), 1, ("forked", "kept")),
    ("snapshot-delete-unknown", ("snapshot", "b1", "--delete", "nosuch"), 1, ("no snapshot named",)),
    ("snapshots-unknown", ("snapshots", "nosuch"), 1, ("no environment named",)),
    ("reset-dotdot", ("reset", "b1", ".."), 2, ("invalid snapshot name",)),
    ("reset-unknown-snapshot", ("reset", "b1", "nosuch"), 1, ("no snapshot named",)),
    ("reset-undo-nothing", ("reset", "b1", "--undo"), 1, ("no reset to undo",)),
    ("reset-undo-with-name", ("reset", "b1", "--undo", "forked"), 2, ("forked",)),
    ("status-unknown", ("status", "nosuch"), 1, ("no environment named 'nosuch'",)),
    ("status-path", ("status", "a/../b"), 2, (NAME_HINT,)),
    ("status-snapshot-ref", ("status", "prod@forked"), 2, (NAME_HINT, "'@'")),
    ("destroy-unknown", ("destroy", "nosuch", "--yes"), 1, ("no environment named",)),
    ("destroy-no-terminal", ("destroy", "b1"), 2, ("confirmation", "--yes")),
    ("promote-no-message", ("promote", "b1"), 2, ("-m",)),
    ("promote-empty-message", ("promote", "b1", "-m", " "), 2, ("commit message",)),
    ("promote-nothing", ("promote", "b1", "-m", "x"), 1, ("nothing to promote",)),
    ("promote-unknown", ("promote", "nosuch", "-m", "x"), 1, ("no environment named",)),
    ("logs-unknown-service", ("logs", "b1", "nosuch"), 1, ("no service named 'nosuch'", "web")),
    ("logs-negative", ("logs", "b1", "-n", "-5"), 2, ("1 or more",)),
    ("log-negative", ("log", "-n", "-1"), 2, ("1 or more",)),
    ("log-not-a-number", ("log", "-n", "abc"), 2, ("invalid",)),
    ("log-bad-env", ("log", "../x"), 2, (NAME_HINT,)),
    ("start-unknown", ("start", "nosuch"), 1, ("no environment named",)),
    ("shell-unknown", ("shell", "nosuch"), 1, ("no environment named",)),
    ("diff-one-side", ("diff", "prod"), 2, ("required",)),
    ("diff-unknown", ("diff", "prod", "nosuch"), 1, ("no environment named",)),
    ("diff-prod-snapshot", ("diff", "prod@forked", "b1"), 2, ("prod has no snapshots",)),
    ("diff-unknown-snapshot", ("diff", "prod", "b1@nosuch"), 1, ("no snapshot named",)),
    ("diff-limit-zero", ("diff", "prod", "b1", "--limit", "0"), 2, ("--limit",)),
    ("unknown-command", ("frobnicate",), 2, ("invalid choice", "frobnicate")),
    ("unknown-option", ("list", "--frob"), 2, ("unrecognized", "--frob")),
    ("no-workspace", ("-w", "/nonexistent/x", "list"), 1, ("no workspace here", "repro-tui demo")),
]


def _edit(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)
    return edit


def _port(value: str) -> Callable[[str], str]:
    import re

    return lambda text: re.sub(r"port: \d+", f"port: {value}", text, count=1)


def _append(extra: str) -> Callable[[str], str]:
    return lambda text: text + extra


def _whole(text: str | bytes) -> Callable[[str], str | bytes]:
    return lambda _text: text


def _track_store(root: Path) -> None:
    (root / ".gitignore").write_text("data/uploads/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "track the database")


def _outside_store(root: Path) -> None:
    make_shop_db(root.parent / "elsewhere" / "shop.db")


# (id, repro.yaml edit, argv, exit code, words, prepare) -- each in a fresh workspace
YAML_CASES: list[tuple[str, Callable, tuple[str, ...], int, tuple[str, ...], Callable[[Path], None] | None]] = [
    ("yaml-broken", _whole("name: shop\nservices: [\n"), ("list",), 2, ("repro.yaml:3:1", "not valid YAML"), None),
    ("yaml-tab", _whole("name: shop\nstores:\n\tdb: {type: sqlite}\n"), ("list",), 2, ("repro.yaml:3:1", "'\\t'"),
     None),
    ("yaml-top-list", _whole("- a\n- b\n"), ("list",), 2, ("top level must be a mapping",), None),
    ("yaml-empty", _whole(""), ("list",), 2, ("empty",), None),
    ("yaml-comments-only", _whole("# nothing\n"), ("list",), 2, ("empty",), None),
    ("yaml-duplicate-key", _append("name: again\n"), ("list",), 2, ("duplicate key", "name"), None),
    ("yaml-nul-byte", _edit("name: shop", "name: sh\0op"), ("list",), 2, ("not valid YAML",), None),
    ("yaml-not-utf8", _whole("name: café\n".encode("latin-1")), ("list",), 2, ("not UTF-8",), None),
    ("yaml-2-mb", _append("# " + "x" * 2_000_000 + "\n"), ("list",), 2, ("at most 1 MB",), None),
    ("yaml-deep-brackets", _whole("name: shop\nx: " + "[" * 5000 + "]" * 5000 + "\n"), ("list",), 2,
     ("nest more than",), None),
    ("yaml-deep-blocks", _whole("name: shop\nx:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 500))),
     ("list",), 2, ("nests too deeply",), None),
    ("yaml-alias-bomb", _whole("name: shop\nconfig_files: &a [x, x, x]\nsecrets: [*a, *a, *a]\n"), ("list",), 2,
     ("secrets", "list of text"), None),
    ("key-typo", _edit("services:", "servces:"), ("list",), 2, ("unknown key 'servces'", "Did you mean 'services'"),
     None),
    ("key-int", _append("1: 2\n"), ("list",), 2, ("unknown key '1'",), None),
    ("key-complex", _append("? [a, b]\n: c\n"), ("list",), 2, ("unknown key",), None),
    ("name-missing", _edit("name: shop\n", ""), ("list",), 2, ("'name' is missing",), None),
    ("name-list", _edit("name: shop", "name: [a, b]"), ("list",), 2, ("'name' must be text", "a list"), None),
    ("backend-unknown", _edit("backend: local", "backend: kubernetes"), ("list",), 2, ("unknown backend",), None),
    ("port-text", _port("eighty"), ("list",), 2, ("port number", "eighty"), None),
    ("port-too-big", _port("70000"), ("list",), 2, ("port number", "70000"), None),
    ("port-huge", _port("99999999999999999999999"), ("list",), 2, ("port number",), None),
    ("port-bool", _port("true"), ("list",), 2, ("port number",), None),
    ("services-list", _edit("services:\n  web:", "services:\n  - web:"), ("list",), 2, ("must be a mapping",), None),
    ("service-bad-name", _edit("  web:", "  web/1:"), ("list",), 2, ("invalid service name",), None),
    ("service-no-command", _edit("    command: python -m http.server {port} --bind 127.0.0.1\n", ""), ("list",), 2,
     ("needs a 'command'",), None),
    ("service-env-mapping", _edit("MODE: live", "MODE: {a: 1}"), ("list",), 2, ("must be text",), None),
    ("service-health", _edit("health: tcp", "health: sometimes"), ("list",), 2, ("'health' must be",), None),
    ("service-timeout", _edit("    health: tcp", "    health: tcp\n    start_timeout: -1"), ("list",), 2,
     ("start_timeout",), None),
    ("service-unknown-key", _edit("    health: tcp", "    health: tcp\n    image: nginx"), ("list",), 2,
     ("unknown key 'image'",), None),
    ("store-type", _edit("type: sqlite", "type: mysql"), ("list",), 2, ("unknown store type 'mysql'",), None),
    ("store-no-path", _edit("{type: sqlite, path: data/shop.db}", "{type: sqlite}"), ("list",), 2,
     ("needs a 'path'",), None),
    ("store-postgres-local", _edit("type: sqlite, path: data/shop.db", "type: postgres, service: web, database: x, "
                                   "user: y"), ("list",), 2, ("backend: docker",), None),
    ("store-in-repro", _edit("path: data/shop.db", "path: .repro/state.db"), ("list",), 2, (".repro/",), None),
    ("store-folder-holds-repro", _edit("path: data/uploads", "path: ."), ("list",), 2, (".repro/",), None),
    ("store-missing-file", _edit("path: data/shop.db", "path: data/nope.db"), ("fork", "prod", "z1"), 1,
     ("does not exist", "stores.db.path"), None),
    ("store-outside-missing", _edit("path: data/shop.db", "path: /nonexistent/shop.db"), ("fork", "prod", "z1"), 1,
     ("does not exist",), None),
    ("store-outside-workspace", _edit("path: data/shop.db", "path: ../elsewhere/shop.db"), ("fork", "prod", "z1"), 0,
     (), _outside_store),
    ("store-not-sqlite", _edit("path: data/shop.db", "path: config/app.yaml"), ("fork", "prod", "z1"), 1,
     ("not a SQLite database",), None),
    ("store-sqlite-is-folder", _edit("path: data/shop.db", "path: config"), ("fork", "prod", "z1"), 1,
     ("not a file",), None),
    ("store-files-is-file", _edit("path: data/uploads", "path: data/shop.db"), ("fork", "prod", "z1"), 1,
     ("not a folder",), None),
    ("store-tracked-by-git", lambda text: text, ("fork", "prod", "z1"), 1, ("tracked by git", "git rm --cached"),
     _track_store),
    ("scrub-unknown-store", _edit("    db:\n      users.email", "    dbx:\n      users.email"), ("list",), 2,
     ("store 'dbx'", "Did you mean 'db'"), None),
    ("scrub-folder-store", _edit("    db:\n      users.email", "    uploads:\n      users.email"), ("list",), 2,
     ("databases only",), None),
    ("scrub-strategy", _edit("users.email: email", "users.email: scramble"), ("list",), 2,
     ("unknown scrub strategy",), None),
    ("scrub-target", _edit("users.email: email", "email: email"), ("list",), 2, ("[schema.]table.column",), None),
    ("scrub-unknown-table", _edit("users.email: email", "customers.email: email"), ("fork", "prod", "z1"), 2,
     ("no table 'customers'", "users"), None),
    ("scrub-unknown-column", _edit("users.email: email", "users.mail: email"), ("fork", "prod", "z1"), 2,
     ("no column 'mail'", "Did you mean 'email'"), None),
    ("override-unknown-service", _edit('    env: {SMTP_HOST: "127.0.0.1:1025"}',
                                       '    env: {SMTP_HOST: "127.0.0.1:1025"}\n    services: {api: {env: {A: 1}}}'),
     ("list",), 2, ("service 'api'",), None),
    ("secrets-mapping", _append("secrets: {a: 1}\n"), ("list",), 2, ("'secrets' must be a list",), None),
    ("config-files-number", _edit("config_files: [config/*.yaml]", "config_files: 5"), ("list",), 2,
     ("'config_files' must be a list",), None),
    ("prod-branch-missing", _edit("branch: main", "branch: release"), ("fork", "prod", "z1"), 1,
     ("'release' does not exist",), None),
    ("yaml-byte-order-mark", lambda text: "\ufeff" + text, ("list",), 0, (), None),
]


def _check_error(r, code: int, words: tuple[str, ...]) -> None:
    out = r.stdout + r.stderr
    assert "Traceback" not in out and "This is a bug" not in out and "unexpected" not in r.stderr, r.stderr
    assert r.returncode == code, (r.returncode, r.stderr)
    if code == 0:
        return
    lower = r.stderr.lower()
    for word in words:
        assert word.lower() in lower, f"{word!r} not in {r.stderr!r}"
    assert 1 <= len([line for line in r.stderr.splitlines() if line.strip()]) <= 3, r.stderr
    error = json.loads(r.stdout.strip().splitlines()[-1])["error"]
    assert error["code"] == code and error["message"]


@pytest.fixture(scope="module")
def one_clone(tmp_path_factory):
    """One workspace with a clone b1, shared by the command cases (none of them changes it)."""
    root = tmp_path_factory.mktemp("input") / "shop"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "repro.yaml").write_text(shop_yaml(free_port()))
    (root / "config").mkdir()
    (root / "config" / "app.yaml").write_text("currency: EUR\n")
    (root / ".gitignore").write_text("data/\n")
    make_shop_db(root / "data" / "shop.db")
    (root / "data" / "uploads").mkdir()
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "shop")
    assert run_cli("fork", "prod", "b1", cwd=root).returncode == 0
    before = run_cli("list", "--json", cwd=root).stdout
    yield root
    after = run_cli("list", "--json", cwd=root).stdout
    kill_services(root)
    assert [e["name"] for e in json.loads(after)] == [e["name"] for e in json.loads(before)] == ["prod", "b1"]


@pytest.mark.parametrize("argv,code,words", [c[1:] for c in COMMAND_CASES], ids=[c[0] for c in COMMAND_CASES])
def test_bad_command_lines(one_clone, argv, code, words):
    full = argv + ("--json",) if "--" not in argv else ("--json", *argv)
    _check_error(run_cli(*full, cwd=one_clone, timeout=60, input=""), code, words)


@pytest.mark.parametrize("edit,argv,code,words,prepare", [c[1:] for c in YAML_CASES], ids=[c[0] for c in YAML_CASES])
def test_bad_repro_yaml_and_stores(shop, edit, argv, code, words, prepare):
    if prepare:
        prepare(shop)
    text = edit((shop / "repro.yaml").read_text())
    (shop / "repro.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())
    prod_db = (shop / "data" / "shop.db").read_bytes()
    t0 = time.monotonic()
    r = run_cli(*argv, "--json", cwd=shop, timeout=60, input="")
    assert time.monotonic() - t0 < 15, "an invalid repro.yaml took too long to refuse"
    _check_error(r, code, words)
    assert (shop / "data" / "shop.db").read_bytes() == prod_db
    if code:
        assert not (shop / ".repro" / "envs" / "z1").exists()


def test_the_corpus_is_big_enough():
    assert len(COMMAND_CASES) + len(YAML_CASES) >= 100


# --- config files the diff must survive --------------------------------------------------

def test_a_config_file_that_is_not_utf8_is_diffed_without_error(ws, shop):
    ws.fork("prod", "b1")
    ws.close()
    for root, text in ((shop, "café: 1\n"), (shop / ".repro" / "envs" / "b1", "café: 2\n")):
        (root / "config" / "latin.yaml").write_bytes(text.encode("latin-1"))
        (root / "config" / "binary.yaml").write_bytes(os.urandom(4096))
    for extra in ((), ("--json",)):
        r = run_cli("diff", "prod", "b1", *extra, cwd=shop, timeout=60)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert "latin.yaml" in r.stdout


@pytest.mark.slow
def test_a_50_mb_config_file_is_diffed_in_bounded_time(ws, shop):
    ws.fork("prod", "b1")
    ws.close()
    block = "".join(f"key{i}: value {i}\n" for i in range(50_000))
    body = block * (50 * 1024 * 1024 // len(block) + 1)
    (shop / "config" / "huge.yaml").write_text(body)
    (shop / ".repro" / "envs" / "b1" / "config" / "huge.yaml").write_text(body.replace("key7: value 7\n",
                                                                                       "key7: value 8\n", 1))
    for extra in ((), ("--json",)):
        t0 = time.monotonic()
        r = run_cli("diff", "prod", "b1", *extra, cwd=shop, timeout=120)
        took = time.monotonic() - t0
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert "huge.yaml" in r.stdout
        assert took < 30, f"the diff of a 50 MB config file took {took:.1f} s"


# --- the repro.yaml loader, fuzzed ---------------------------------------------------------

def _load(text: str) -> None:
    try:
        spec = parse_spec(text, Path("/nonexistent-workspace"))
    except InvalidInput as exc:
        assert exc.message and exc.code == 2
    else:
        assert isinstance(spec, Spec)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_fuzz_any_text(text):
    _load(text)


_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10, 70000), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["tcp", "/health", "sqlite", "files", "postgres",
                                                           "email", "null", "local", "docker", "{port}"]))
_keys = st.sampled_from([*TOP_KEYS, "branch", "compose_project", "overrides", "scrub", "env", "services",
                         "command", "port", "health", "cwd", "start_timeout", "type", "path", "image",
                         "users.email", "web", "db", "constant", "http", "x"])
_tree = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(_keys, inner, max_size=5)), max_leaves=25)


def _yaml_text(data) -> str:
    import io

    from ruamel.yaml import YAML

    out = io.StringIO()
    YAML().dump(data, out)
    return out.getvalue()


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_keys, _tree, max_size=8).map(lambda d: {"name": "shop", **d}))
def test_fuzz_yaml_shaped_documents(data):
    _load(_yaml_text(data))
