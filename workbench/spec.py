"""repro.yaml: load, validate and describe a workspace's configuration.

Every error names ``repro.yaml:LINE:COL``, says what was expected and, for a typo,
suggests the nearest valid key.

Longer than most modules (about 850 lines), on purpose: every field of the file is checked
here, with its own message, so that a user never meets a traceback or a vague error.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from workbench.errors import InvalidInput
from workbench.names import name_problem

SPEC_FILE = "repro.yaml"
BACKENDS = ("local", "docker")
STORE_TYPES = ("sqlite", "postgres", "files")
SCRUB_STRATEGIES = ("email", "name", "phone", "null", "hash", "constant", "keep")

TOP_KEYS = (
    "name",
    "backend",
    "prod",
    "services",
    "stores",
    "clone",
    "config_files",
    "secrets",
    "not_secrets",
    "docker",
    "checks",
)
PROD_KEYS = ("branch", "compose_project")
CLONE_KEYS = ("overrides", "scrub", "egress", "stop_grace")
OVERRIDE_KEYS = ("env", "services")
LOCAL_SERVICE_KEYS = ("command", "port", "env", "health", "cwd", "start_timeout")
DOCKER_SERVICE_KEYS = (
    "image",
    "command",
    "entrypoint",
    "environment",
    "env",
    "ports",
    "volumes",
    "depends_on",
    "healthcheck",
    "health",
    "working_dir",
    "user",
    "port",
)
STORE_KEYS = {
    "sqlite": ("type", "path"),
    "files": ("type", "path"),
    "postgres": ("type", "service", "database", "user", "password", "port", "volume"),
}
DOCKER_KEYS = ("bind_mounts", "pause_prod_for_copy")
HTTP_CHECK_KEYS = ("http", "service", "headers", "body", "expect", "runs", "timeout", "clones_only")
COMMAND_CHECK_KEYS = ("command", "expect", "runs", "timeout")
HTTP_EXPECT_KEYS = ("status", "text", "json", "latency_ms")
COMMAND_EXPECT_KEYS = ("exit", "text", "latency_ms")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
PROD_METHODS = ("GET", "HEAD")   # all prod ever receives from a check


@dataclass
class Health:
    kind: str  # "tcp" | "http" | "none"
    path: str = "/"


@dataclass
class ServiceSpec:
    name: str
    command: str | list[str] | None = None
    port: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    health: Health = field(default_factory=lambda: Health("none"))
    cwd: str | None = None
    start_timeout: float = 15.0
    # docker subset
    image: str | None = None
    entrypoint: str | list[str] | None = None
    ports: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    healthcheck: dict[str, Any] | None = None
    working_dir: str | None = None
    user: str | None = None

    def declared(self) -> dict[str, Any]:
        """The settings as declared (templates unexpanded), for diffs and status."""
        out: dict[str, Any] = {
            "command": self.command,
            "env": dict(self.env),
            "port": self.port,
            "health": None
            if self.health.kind == "none"
            else (f"http:{self.health.path}" if self.health.kind == "http" else "tcp"),
        }
        if self.image:
            out.update(
                image=self.image,
                entrypoint=self.entrypoint,
                ports=list(self.ports),
                volumes=list(self.volumes),
                depends_on=list(self.depends_on),
            )
        return out


@dataclass
class StoreSpec:
    name: str
    type: str
    path: str | None = None
    service: str | None = None
    database: str | None = None
    user: str | None = None
    password: str | None = None
    port: int | None = None
    volume: str | None = None


@dataclass
class ScrubRule:
    store: str
    table: str  # may include schema: "public.customer"
    column: str
    strategy: str
    value: Any = None  # for constant

    @property
    def target(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass
class CheckSpec:
    """A check: a probe that says whether an environment shows the failure (``checks:``).

    ``http``: a request to one of the environment's services; ``command``: a command run in
    a clone's worktree with the clone's environment (clones only). What passing means:
    ``status`` (any below 400 when empty), a ``text`` in the body or the output, ``json``
    fields, a bound on the median latency of ``runs`` runs, the ``exit`` code of a command."""

    name: str
    kind: str                                   # "http" | "command"
    method: str = "GET"
    path: str = "/"
    service: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    command: str | list[str] | None = None
    status: list[int] = field(default_factory=list)
    text: str | None = None
    json: dict[str, Any] = field(default_factory=dict)
    latency_ms: float | None = None
    exit: int = 0
    runs: int = 3
    timeout: float = 5.0
    clones_only: bool = False

    @property
    def on_prod(self) -> bool:
        """Whether the check runs against prod too (HTTP GET or HEAD only)."""
        return self.kind == "http" and not self.clones_only and self.method in PROD_METHODS

    @property
    def request(self) -> str:
        """``GET /orders/1042`` or the command, as one line."""
        if self.kind == "http":
            return f"{self.method} {self.path}"
        return self.command if isinstance(self.command, str) else " ".join(self.command or [])

    @property
    def expectation(self) -> str:
        """What passing means, in words: ``status 200``, ``exit 0, "ok" in the output``."""
        parts = []
        if self.kind == "http":
            parts.append("status " + " or ".join(map(str, self.status)) if self.status else "a status below 400")
        else:
            parts.append(f"exit {self.exit}")
        if self.text is not None:
            parts.append(f"{self.text!r} in the {'body' if self.kind == 'http' else 'output'}")
        parts += [f"{k} = {v!r}" for k, v in self.json.items()]
        if self.latency_ms is not None:
            parts.append(f"median under {self.latency_ms:g} ms")
        return ", ".join(parts)


@dataclass
class Spec:
    root: Path
    name: str
    backend: str = "local"
    prod_branch: str = "main"
    compose_project: str | None = None
    services: dict[str, ServiceSpec] = field(default_factory=dict)
    stores: dict[str, StoreSpec] = field(default_factory=dict)
    override_env: dict[str, str] = field(default_factory=dict)
    override_services: dict[str, dict[str, Any]] = field(default_factory=dict)
    scrub: list[ScrubRule] = field(default_factory=list)
    config_files: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    not_secrets: list[str] = field(default_factory=list)
    docker: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, CheckSpec] = field(default_factory=dict)
    egress_allow: list[str] = field(default_factory=list)   # clone.egress.allow: host:port a clone may reach
    # clone.stop_grace: seconds a service of a clone gets to stop when a reset, an undo or a
    # destroy throws its state away (default 0: killed at once; a plain stop is always graceful)
    stop_grace: dict[str, float] = field(default_factory=dict)

    def scrub_rules(self, store: str) -> list[ScrubRule]:
        return [r for r in self.scrub if r.store == store]

    def store_path(self, store: StoreSpec) -> Path:
        assert store.path is not None
        p = Path(store.path).expanduser()
        return p if p.is_absolute() else self.root / p


class _Loc:
    """Line and column of a node, for error messages (1-based)."""

    def __init__(self, file: str) -> None:
        self.file = file

    def of_key(self, parent: Any, key: Any) -> str:
        try:
            line, col = parent.lc.key(key)
            return f"{self.file}:{line + 1}:{col + 1}"
        except Exception:
            return self.of(parent)

    def of_value(self, parent: Any, key: Any) -> str:
        try:
            if isinstance(parent, CommentedSeq):
                line, col = parent.lc.item(key)
            else:
                line, col = parent.lc.value(key)
            return f"{self.file}:{line + 1}:{col + 1}"
        except Exception:
            return self.of_key(parent, key)

    def of(self, node: Any) -> str:
        try:
            return f"{self.file}:{node.lc.line + 1}:{node.lc.col + 1}"
        except Exception:
            return f"{self.file}:1:1"


def _bad(where: str, what: str, hint: str | None = None) -> InvalidInput:
    return InvalidInput(f"{where}: {what}", hint)


def _suggest(key: str, valid: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.6)
    if close:
        return f"Did you mean '{close[0]}'? Valid keys here: {', '.join(valid)}."
    return f"Valid keys here: {', '.join(valid)}."


def _check_keys(loc: _Loc, node: Any, valid: tuple[str, ...], where: str) -> None:
    for key in node:
        if key not in valid:
            raise _bad(loc.of_key(node, key), f"unknown key '{key}' in {where}.", _suggest(key, valid))


def _mapping(loc: _Loc, parent: Any, key: Any, what: str, optional: bool = True) -> Any:
    value = parent.get(key) if isinstance(parent, dict) else None
    if value is None:
        if optional:
            return CommentedMap()
        raise _bad(loc.of(parent), f"'{key}' is missing: {what} is required.")
    if not isinstance(value, dict):
        raise _bad(loc.of_value(parent, key), f"'{key}' must be a mapping ({what}), not {_kind(value)}.")
    return value


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if value is None:
        return "empty"
    return f"text ({str(value)[:40]!r})"


def _str(loc: _Loc, parent: Any, key: Any, what: str) -> str:
    value = parent[key]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _bad(loc.of_value(parent, key), f"'{key}' must be text ({what}), not {_kind(value)}.")
    return str(value)


def _env_map(loc: _Loc, parent: Any, key: Any) -> dict[str, str]:
    node = parent.get(key)
    if node is None:
        return {}
    if isinstance(node, list):  # docker style: ["A=1", "B=2"]
        out = {}
        for i, item in enumerate(node):
            if not isinstance(item, str) or "=" not in item:
                raise _bad(loc.of_value(node, i), "environment entries must read NAME=value.")
            k, v = item.split("=", 1)
            out[k] = v
        return out
    if not isinstance(node, dict):
        raise _bad(loc.of_value(parent, key), f"'{key}' must be a mapping of NAME: value, not {_kind(node)}.")
    out = {}
    for k, v in node.items():
        if isinstance(v, (dict, list)):
            raise _bad(loc.of_value(node, k), f"the value of '{k}' must be text, not {_kind(v)}.")
        out[str(k)] = "" if v is None else (str(v).lower() if isinstance(v, bool) else str(v))
    return out


def _port(loc: _Loc, parent: Any, key: Any) -> int | None:
    value = parent.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise _bad(loc.of_value(parent, key), f"'{key}' must be a port number 1-65535, not {_kind(value)}.")
    return value


def _split_check(loc: Any, node: Any, cmd: str) -> str:
    """A command given as text, once it is known to split into words as a shell would (an
    unclosed quote was an unexpected error when the service started)."""
    try:
        shlex.split(cmd)
    except ValueError as exc:
        raise _bad(loc.of_value(node, "command"), f"'command' cannot be split into words: {exc} "
                   "(a quote opened and not closed?).",
                   "Close the quote, or write the command as a list of words: [python, app.py]") from None
    return cmd


def _words(loc: _Loc, parent: Any, key: Any) -> list[str]:
    """A command as a list of words: each one text (a number is taken as text), never a list."""
    value = parent[key]
    for i, word in enumerate(value):
        if isinstance(word, bool) or not isinstance(word, str | int | float):
            raise _bad(loc.of_value(value, i) if hasattr(value, "lc") else loc.of_value(parent, key),
                       f"'{key}' must be text or a list of words, and item {i + 1} is {_kind(word)}.")
    return [str(w) for w in value]


def _str_list(loc: _Loc, parent: Any, key: Any) -> list[str]:
    value = parent.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise _bad(loc.of_value(parent, key), f"'{key}' must be a list of text.")
    return [str(v) for v in value]


def _health(loc: _Loc, node: Any, port: int | None) -> Health:
    value = node.get("health")
    if value is None:
        return Health("tcp") if port else Health("none")
    if value in ("tcp", True):
        return Health("tcp")
    if value in ("none", False):
        return Health("none")
    if isinstance(value, str) and (value.startswith("http:") or value.startswith("/")):
        path = value[5:] if value.startswith("http:") else value
        return Health("http", path or "/")
    if isinstance(value, dict) and set(value) <= {"http", "tcp"}:
        if "http" in value:
            return Health("http", str(value["http"]))
        return Health("tcp")
    raise _bad(
        loc.of_value(node, "health"),
        f"'health' must be 'tcp', 'none' or an HTTP path like '/health', not {_kind(value)}.",
    )


def _parse_scrub(loc: _Loc, node: CommentedMap, stores: dict[str, StoreSpec]) -> list[ScrubRule]:
    rules = []
    for store, cols in node.items():
        if store not in stores:
            raise _bad(
                loc.of_key(node, store),
                f"scrub rules name the store '{store}', which is not under 'stores'.",
                _suggest(store, list(stores)) if stores else "Declare the store under 'stores' first.",
            )
        if stores[store].type == "files":
            raise _bad(
                loc.of_key(node, store), f"the store '{store}' is a folder: scrub rules apply to databases only."
            )
        if not isinstance(cols, dict):
            raise _bad(
                loc.of_value(node, store), f"scrub rules of '{store}' must be a mapping of table.column: strategy."
            )
        for target, strategy in cols.items():
            where = loc.of_key(cols, target)
            parts = str(target).split(".")
            if len(parts) not in (2, 3) or not all(parts):
                raise _bad(where, f"scrub rule '{target}' must name [schema.]table.column, e.g. users.email.")
            value = None
            if strategy is None:
                strategy = "null"
            elif isinstance(strategy, dict):
                if list(strategy) != ["constant"]:
                    raise _bad(loc.of_value(cols, target), "a mapping strategy must be {constant: VALUE}.")
                value = strategy["constant"]
                strategy = "constant"
            elif isinstance(strategy, str) and strategy.startswith("constant:"):
                value = strategy.split(":", 1)[1].strip()
                strategy = "constant"
            if strategy not in SCRUB_STRATEGIES:
                raise _bad(
                    loc.of_value(cols, target),
                    f"unknown scrub strategy '{strategy}'.",
                    _suggest(str(strategy), SCRUB_STRATEGIES).replace("Valid keys", "Strategies"),
                )
            rules.append(ScrubRule(store, ".".join(parts[:-1]), parts[-1], str(strategy), value))
    return rules


def _parse_grace(loc: _Loc, clone: Any) -> dict[str, float]:
    """``clone.stop_grace``: service -> seconds it may take to stop before a reset kills it."""
    node = _mapping(loc, clone, "stop_grace", "seconds by service")
    out: dict[str, float] = {}
    for name, value in node.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 600:
            raise _bad(loc.of_value(node, name), f"stop_grace of '{name}' must be a number of seconds, 0 to 600.")
        out[str(name)] = float(value)
    return out


def _parse_egress(loc: _Loc, clone: Any) -> list[str]:
    """``clone.egress.allow``: the hosts (host:port, or host for every port) a clone may reach."""
    from workbench.egress import parse_allow

    egress = _mapping(loc, clone, "egress", "what clones may reach")
    _check_keys(loc, egress, ("allow",), "'clone.egress'")
    allow = _str_list(loc, egress, "allow")
    for i, entry in enumerate(allow):
        if parse_allow(entry) is None:
            raise _bad(loc.of_value(egress["allow"], i) if isinstance(egress["allow"], list) else
                       loc.of_value(egress, "allow"), f"'{entry}' is not a host:port (e.g. api.partner.example:443).")
    return allow


def _parse_service(loc: _Loc, name: str, node: Any, backend: str) -> ServiceSpec:
    valid = LOCAL_SERVICE_KEYS if backend == "local" else DOCKER_SERVICE_KEYS
    if not isinstance(node, dict):
        raise InvalidInput(f"{loc.of(node) if hasattr(node, 'lc') else loc.file}: service '{name}' must be a mapping.")
    _check_keys(loc, node, valid, f"service '{name}' ({backend} backend)")
    svc = ServiceSpec(name=name)
    if "command" in node:
        cmd = node["command"]
        if isinstance(cmd, list):
            svc.command = _words(loc, node, "command")
        elif isinstance(cmd, str):
            svc.command = _split_check(loc, node, cmd)
        else:
            raise _bad(loc.of_value(node, "command"), f"'command' must be text or a list, not {_kind(cmd)}.")
    if backend == "local" and not svc.command:
        raise _bad(
            loc.of_key(node, next(iter(node), name)) if node else loc.file,
            f"service '{name}' needs a 'command' (the local backend runs it as a process).",
        )
    svc.port = _port(loc, node, "port")
    svc.env = _env_map(loc, node, "env")
    svc.env.update(_env_map(loc, node, "environment"))
    svc.health = _health(loc, node, svc.port)
    if "cwd" in node:
        svc.cwd = _str(loc, node, "cwd", "a folder relative to the worktree")
    if "start_timeout" in node:
        t = node["start_timeout"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or t <= 0:
            raise _bad(loc.of_value(node, "start_timeout"), "'start_timeout' must be a number of seconds.")
        svc.start_timeout = float(t)
    if backend == "docker":
        if "image" not in node:
            raise _bad(loc.of(node), f"service '{name}' needs an 'image' (the docker backend runs containers).")
        svc.image = _str(loc, node, "image", "an image name")
        if "entrypoint" in node:
            e = node["entrypoint"]
            svc.entrypoint = _words(loc, node, "entrypoint") if isinstance(e, list) else _str(loc, node, "entrypoint",
                                                                                              "a command")
        svc.ports = _str_list(loc, node, "ports")
        svc.volumes = _str_list(loc, node, "volumes")
        svc.depends_on = _str_list(loc, node, "depends_on")
        if "healthcheck" in node:
            hc = node["healthcheck"]
            if not isinstance(hc, dict):
                raise _bad(loc.of_value(node, "healthcheck"), "'healthcheck' must be a mapping with 'test'.")
            if "test" in hc and isinstance(hc["test"], list):
                _words(loc, hc, "test")
            elif "test" in hc:
                _str(loc, hc, "test", "a command")
            for k, v in hc.items():
                if k != "test" and (isinstance(v, bool | dict | list) or v is None):
                    raise _bad(loc.of_value(hc, k), f"healthcheck '{k}' must be a number or a duration like 5s.")
            svc.healthcheck = dict(hc)
        for k in ("working_dir", "user"):
            if k in node:
                setattr(svc, k, _str(loc, node, k, k))
    return svc


def _parse_checks(loc: _Loc, node: CommentedMap, spec: Spec) -> dict[str, CheckSpec]:
    """``checks:`` by name. A request other than GET or HEAD is refused here unless the
    check says ``clones_only: true``: prod only ever receives GET and HEAD."""
    checks = {}
    for name, item in node.items():
        problem = name_problem(str(name))
        if problem:
            raise _bad(loc.of_key(node, name), f"invalid check name '{name}': {problem}.")
        if not isinstance(item, dict):
            raise _bad(loc.of_value(node, name), f"check '{name}' must be a mapping with 'http' or 'command'.")
        if ("http" in item) == ("command" in item):
            raise _bad(loc.of_key(node, name), f"check '{name}' needs one of 'http' (e.g. http: GET /health) "
                       "or 'command' (clones only).")
        kind = "http" if "http" in item else "command"
        _check_keys(loc, item, HTTP_CHECK_KEYS if kind == "http" else COMMAND_CHECK_KEYS,
                    f"check '{name}' ({kind})")
        check = CheckSpec(name=str(name), kind=kind)
        if kind == "http":
            _http_request(loc, item, check, spec)
        else:
            cmd = item["command"]
            if isinstance(cmd, list) and cmd and all(isinstance(c, (str, int)) for c in cmd):
                check.command = [str(c) for c in cmd]
            elif isinstance(cmd, str) and cmd.strip():
                check.command = cmd
            else:
                raise _bad(loc.of_value(item, "command"), f"'command' must be text or a list, not {_kind(cmd)}.")
            check.runs, check.timeout = 1, 30.0
        expect = _mapping(loc, item, "expect", "what passing means")
        _check_keys(loc, expect, HTTP_EXPECT_KEYS if kind == "http" else COMMAND_EXPECT_KEYS,
                    f"'expect' of check '{name}'")
        _expectations(loc, expect, check)
        if "runs" in item:
            check.runs = _number(loc, item, "runs", 1, 20, "a whole number of runs, 1-20", whole=True)
        if "timeout" in item:
            check.timeout = _number(loc, item, "timeout", 0.1, 600, "seconds, 0.1-600")
        checks[check.name] = check
    return checks


METHOD_OVERRIDE_HEADERS = {"x-http-method-override", "x-http-method", "x-method-override"}


def _http_request(loc: _Loc, item: Any, check: CheckSpec, spec: Spec) -> None:
    words = _str(loc, item, "http", "METHOD PATH, e.g. GET /orders/1042").split()
    if len(words) == 1:
        words = ["GET", *words]
    if len(words) != 2 or not words[1].startswith("/"):
        raise _bad(loc.of_value(item, "http"), f"'http' must read METHOD PATH, e.g. GET /orders/1042, not "
                   f"{item['http']!r}.")
    method = words[0].upper()
    if method not in HTTP_METHODS:
        raise _bad(loc.of_value(item, "http"), f"unknown HTTP method {words[0]!r}.",
                   f"Use one of: {', '.join(HTTP_METHODS)}.")
    check.method, check.path = method, words[1]
    if "clones_only" in item:
        if not isinstance(item["clones_only"], bool):
            raise _bad(loc.of_value(item, "clones_only"), "'clones_only' must be true or false.")
        check.clones_only = item["clones_only"]
    if method not in PROD_METHODS and not check.clones_only:
        raise _bad(loc.of_value(item, "http"), f"check '{check.name}' would send {method} to prod, and prod only "
                   "ever receives GET or HEAD.",
                   "Make it a GET (or HEAD), or add 'clones_only: true' to run it on clones only.")
    with_port = [n for n, s in spec.services.items() if s.port or s.ports]
    if "service" in item:
        check.service = _str(loc, item, "service", "a service's name")
        if check.service not in spec.services and not spec.compose_project:
            raise _bad(loc.of_value(item, "service"), f"check '{check.name}' names the service '{check.service}', "
                       "which is not under 'services'.", _suggest(check.service, list(spec.services)))
    elif with_port:
        check.service = with_port[0]
    else:
        raise _bad(loc.of_key(item, "http"), f"check '{check.name}' needs 'service': the service to send it to.")
    check.headers = _env_map(loc, item, "headers")
    if "body" in item:
        check.body = _str(loc, item, "body", "the request's body")
    if not check.clones_only:   # a GET that asks the app to act as another method is not a GET
        override = [h for h in check.headers if h.lower() in METHOD_OVERRIDE_HEADERS]
        if override or re.search(r"[?&]_method=", check.path, re.IGNORECASE):
            what = f"the header {override[0]}" if override else "'_method=' in its path"
            raise _bad(loc.of_value(item, "headers" if override else "http"),
                       f"check '{check.name}' asks prod to treat its {method} as another method ({what}), and "
                       "prod only ever receives GET or HEAD.",
                       "Remove it, or add 'clones_only: true' to run the check on clones only.")


def _expectations(loc: _Loc, expect: Any, check: CheckSpec) -> None:
    if "status" in expect:
        value = expect["status"]
        codes = value if isinstance(value, list) else [value]
        if not codes or not all(isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in codes):
            raise _bad(loc.of_value(expect, "status"), f"'status' must be an HTTP status 100-599 (or a list of "
                       f"them), not {_kind(value)}.")
        check.status = list(codes)
    if "exit" in expect:
        check.exit = int(_number(loc, expect, "exit", 0, 255, "an exit code, 0-255", whole=True))
    if "text" in expect:
        check.text = _str(loc, expect, "text", "a text the body or output holds")
    if "json" in expect:
        fields = expect["json"]
        if not isinstance(fields, dict) or not fields:
            raise _bad(loc.of_value(expect, "json"), "'json' must map field paths to values, e.g. "
                       "{total: \"60.98\", items.0.sku: NW-0001}.")
        for key, value in fields.items():
            if isinstance(value, (dict, list)):
                raise _bad(loc.of_value(fields, key), f"the expected value of '{key}' must be a plain value.")
        check.json = {str(k): v for k, v in fields.items()}
    if "latency_ms" in expect:
        check.latency_ms = _number(loc, expect, "latency_ms", 0.001, 3_600_000, "milliseconds")


def _number(loc: _Loc, node: Any, key: str, low: float, high: float, what: str, whole: bool = False) -> Any:
    value = node[key]
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not isinstance(value, int))
            or not low <= value <= high):
        raise _bad(loc.of_value(node, key), f"'{key}' must be {what}, not {_kind(value)}.")
    return value


MAX_NESTING = 64
MAX_VALUES = 20_000   # values of the whole file, once its aliases are expanded (a repro.yaml has hundreds)


def _expanded(data: Any) -> int:
    """How many values ``data`` holds once every alias is expanded, counted without expanding
    anything (each node once, its size remembered): a 600-byte file of nested aliases can
    stand for billions of values, and whatever walked them would never end."""
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        if not isinstance(node, dict | list):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        sizes[key] = 1   # a node that holds itself (a recursive alias) counts once
        children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        total = 1 + sum(size(c) for c in children)
        sizes[key] = total
        return total

    return size(data)


def _too_deep(text: str) -> int | None:
    """The line where flow brackets nest deeper than MAX_NESTING, or None. ruamel.yaml recurses
    once per level (and slowly: 2,000 levels take seconds before it fails)."""
    if text.count("[") + text.count("{") <= MAX_NESTING:
        return None
    depth, line = 0, 1
    for ch in text:
        if ch == "\n":
            line += 1
        elif ch in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return line
        elif ch in "]}":
            depth = max(0, depth - 1)
    return None


def _check_store_path(loc: _Loc, node: Any, spec: Spec, st: StoreSpec) -> None:
    """prod's data never lives in repro-tui's own folder, and a folder store never holds it:
    its copy would be copied into itself, without end."""
    try:
        path = spec.store_path(st).resolve()
        repro = (spec.root / ".repro").resolve()
    except (OSError, RuntimeError, ValueError):
        return
    if path == repro or repro in path.parents or (st.type == "files" and path in repro.parents):
        where = "inside" if repro in path.parents else "or holds"
        raise _bad(loc.of_value(node, "path"),
                   f"store '{st.name}': {st.path!r} is {where} repro-tui's own folder .repro/, where clones "
                   "keep their copies.",
                   "Point 'path' at prod's data: a database file or a folder of the application.")


def parse_spec(text: str, root: Path, file: str = SPEC_FILE) -> Spec:
    loc = _Loc(file)
    yaml = YAML()
    deep = _too_deep(text)
    if deep is not None:
        raise InvalidInput(f"{file}:{deep}: brackets nest more than {MAX_NESTING} levels deep.",
                           "A repro.yaml needs a few levels at most: check the brackets there.")
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        problem = str(exc.problem or exc.context).replace("'<stream end>'", "the end of the file")
        context = ""
        if exc.context and exc.context_mark and exc.problem_mark and exc.context_mark.line != exc.problem_mark.line:
            context = (
                f" ({exc.context} that starts at line {exc.context_mark.line + 1}, "
                f"column {exc.context_mark.column + 1})"
            )
        raise InvalidInput(
            f"{where}: this is not valid YAML: {problem}{context}.",
            "Check the indentation, the brackets and the quoting there.",
        ) from None
    except YAMLError as exc:
        raise InvalidInput(f"{file}: this is not valid YAML: {exc}.") from None
    except RecursionError:
        raise InvalidInput(f"{file}: the file nests too deeply to be read.",
                           "A repro.yaml needs a few levels at most: check the indentation.") from None
    if data is None:
        raise InvalidInput(f"{file}:1:1: the file is empty.", "Start from the example in README (section repro.yaml).")
    if _expanded(data) > MAX_VALUES:
        raise InvalidInput(f"{file}: its aliases (*name) expand to more than {MAX_VALUES:,} values.",
                           "Write the values out, or use fewer nested aliases: a repro.yaml needs a few hundred.")
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{file}:1:1: the top level must be a mapping of keys (name, backend, services, ...), not {_kind(data)}."
        )
    _check_keys(loc, data, TOP_KEYS, "the top level")
    if "name" not in data:
        raise InvalidInput(f"{file}:1:1: 'name' is missing: the workspace needs a name, e.g. 'name: shop'.")
    spec = Spec(root=root, name=_str(loc, data, "name", "the workspace's name"))
    if "backend" in data:
        backend = data["backend"]
        if backend not in BACKENDS:
            raise _bad(
                loc.of_value(data, "backend"), f"unknown backend {backend!r}.", f"Use one of: {', '.join(BACKENDS)}."
            )
        spec.backend = backend
    prod = _mapping(loc, data, "prod", "prod's branch")
    _check_keys(loc, prod, PROD_KEYS, "'prod'")
    if "branch" in prod:
        spec.prod_branch = _str(loc, prod, "branch", "a git branch")
    if "compose_project" in prod:
        if spec.backend != "docker":
            raise _bad(loc.of_key(prod, "compose_project"), "'compose_project' needs 'backend: docker'.")
        spec.compose_project = _str(loc, prod, "compose_project", "a docker compose project name")
    services = _mapping(loc, data, "services", "services by name")
    for name, node in services.items():
        bad_name = name_problem(str(name).replace("_", "-"))
        if bad_name:
            raise _bad(loc.of_key(services, name), f"invalid service name '{name}': {bad_name}.")
        spec.services[str(name)] = _parse_service(loc, str(name), node, spec.backend)
    stores = _mapping(loc, data, "stores", "stores by name")
    for name, node in stores.items():
        where = loc.of_key(stores, name)
        if not isinstance(node, dict):
            raise _bad(loc.of_value(stores, name), f"store '{name}' must be a mapping with 'type'.")
        if "type" not in node:
            raise _bad(where, f"store '{name}' needs a 'type': one of {', '.join(STORE_TYPES)}.")
        kind = node["type"]
        if kind not in STORE_TYPES:
            raise _bad(
                loc.of_value(node, "type"),
                f"unknown store type {kind!r}.",
                _suggest(str(kind), STORE_TYPES).replace("Valid keys here", "Store types"),
            )
        _check_keys(loc, node, STORE_KEYS[kind], f"store '{name}' ({kind})")
        st = StoreSpec(name=str(name), type=kind)
        if kind in ("sqlite", "files"):
            if "path" not in node:
                raise _bad(where, f"store '{name}' needs a 'path' (relative to the workspace root, or absolute).")
            st.path = _str(loc, node, "path", "a path")
            _check_store_path(loc, node, spec, st)
        else:
            if spec.backend != "docker":
                raise _bad(where, f"store '{name}': postgres stores need 'backend: docker'.")
            for k in ("service", "database", "user"):
                if k not in node:
                    raise _bad(where, f"store '{name}' needs '{k}'.")
                setattr(st, k, _str(loc, node, k, k))
            if "password" in node:
                st.password = _str(loc, node, "password", "a password")
            if "volume" in node:
                st.volume = _str(loc, node, "volume", "a volume name")
            st.port = _port(loc, node, "port")
        spec.stores[str(name)] = st
    clone = _mapping(loc, data, "clone", "what clones get")
    _check_keys(loc, clone, CLONE_KEYS, "'clone'")
    overrides = _mapping(loc, clone, "overrides", "overrides")
    _check_keys(loc, overrides, OVERRIDE_KEYS, "'clone.overrides'")
    spec.override_env = _env_map(loc, overrides, "env")
    svc_over = _mapping(loc, overrides, "services", "per-service overrides")
    for sname, node in svc_over.items():
        if sname not in spec.services:
            raise _bad(
                loc.of_key(svc_over, sname),
                f"overrides name the service '{sname}', which is not under 'services'.",
                _suggest(str(sname), list(spec.services)),
            )
        if not isinstance(node, dict):
            raise _bad(loc.of_value(svc_over, sname), "a service override must be a mapping (e.g. env: {...}).")
        _check_keys(loc, node, ("env", "command"), f"overrides of '{sname}'")
        spec.override_services[str(sname)] = {
            "env": _env_map(loc, node, "env"),
            **({"command": _words(loc, node, "command") if isinstance(node["command"], list) else
                _split_check(loc, node, _str(loc, node, "command", "a command"))} if "command" in node else {}),
        }
    scrub = _mapping(loc, clone, "scrub", "scrub rules by store")
    spec.scrub = _parse_scrub(loc, scrub, spec.stores)
    spec.egress_allow = _parse_egress(loc, clone)
    spec.stop_grace = _parse_grace(loc, clone)
    spec.config_files = _str_list(loc, data, "config_files")
    spec.secrets = _str_list(loc, data, "secrets")
    spec.not_secrets = _str_list(loc, data, "not_secrets")
    docker = _mapping(loc, data, "docker", "docker settings")
    _check_keys(loc, docker, DOCKER_KEYS, "'docker'")
    if "bind_mounts" in docker and docker["bind_mounts"] not in ("copy", "share-readonly"):
        raise _bad(loc.of_value(docker, "bind_mounts"), "'bind_mounts' must be 'copy' or 'share-readonly'.")
    spec.docker = dict(docker)
    spec.checks = _parse_checks(loc, _mapping(loc, data, "checks", "checks by name"), spec)
    for sname, svc in spec.services.items():
        for dep in svc.depends_on:
            if dep not in spec.services:
                raise InvalidInput(f"{file}: service '{sname}' depends on '{dep}', which is not under 'services'.")
    for st in spec.stores.values():
        if st.service and st.service not in spec.services and not spec.compose_project:
            raise InvalidInput(
                f"{file}: store '{st.name}' names the service '{st.service}', which is not under 'services'."
            )
    return spec


def load_spec(root: Path, file: Path | None = None) -> Spec:
    path = file or root / SPEC_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(
            f"{path}: no repro.yaml here.", "Create one (see README, section repro.yaml) or run: repro-tui demo"
        ) from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read it: {exc.strerror}.") from None
    if len(raw) > 1_000_000:
        raise InvalidInput(f"{path.name}: the file is {len(raw) // 1024} KB; a repro.yaml is at most 1 MB.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InvalidInput(f"{path.name}:{line}: the file is not UTF-8 text.", "Save it as UTF-8.") from None
    return parse_spec(text, root, file=path.name if file is None else str(path))
