"""``repro-tui init [PROJECT]``: write a commented repro.yaml for a running compose project.

It looks at the containers docker compose runs (label ``com.docker.compose.project``),
takes the project named, or the only one, and writes a ``repro.yaml`` that adopts it
(``prod: {compose_project: NAME}``): a PostgreSQL store for each service that runs
PostgreSQL (told by its image, its environment or its port), scrub rules left commented
out for the columns whose names look personal, a guess of the config files to diff.
prod is only read: container settings from the engine, and for a PostgreSQL service the
names of its databases and columns, through ``psql`` run in its container. Passwords are
never written: the store reads one from the service's environment when it runs.

An existing repro.yaml is never overwritten (exit 1); several running projects and none
named is exit 2, with the list.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.docker_engine import COMPOSE_PROJECT, COMPOSE_SERVICE, Engine, engine_call
from workbench.errors import InvalidInput, NotFound, Refused
from workbench.spec import SPEC_FILE, parse_spec

PG_IMAGE = re.compile(r"(^|/)(postgres|postgis|timescaledb|pgvector|supabase/postgres)[^/]*(:|@|$)")
PG_ENV = ("POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB", "PGDATA", "POSTGRESQL_PASSWORD")
WORKING_DIR = "com.docker.compose.project.working_dir"
CONFIG_FILES = "com.docker.compose.project.config_files"
PATH_PRELUDE = 'for d in /usr/lib/postgresql/*/bin; do PATH="$d:$PATH"; done; export PATH; '

# column names that usually hold personal data, and the scrub strategy they suggest
PERSONAL = [
    (re.compile(r"e_?mail"), "email"),
    (re.compile(r"phone|mobile|fax|msisdn"), "phone"),
    (re.compile(r"^(first_?|last_?|full_?|given_?|family_?|sur|middle_?|user_?|display_?|contact_?)?name$"),
     "name"),
    (re.compile(r"address|street|postal|zip|iban|ssn|birth|passport|ip_addr|card_?number"), "null"),
]
MAIL_KEYS = re.compile(r"SMTP|MAIL_(HOST|SERVER|URL)|EMAIL_HOST")
CONFIG_GLOBS = (".env", "config/*.yaml", "config/*.yml", "config/*.json", "config/*.toml", "config/*.ini",
                "conf/*.yaml", "conf/*.yml", "conf/*.conf", "settings/*.yaml", "settings/*.yml", "*.env")


@dataclass
class PgGuess:
    service: str
    image: str
    database: str
    user: str
    databases: list[str] = field(default_factory=list)
    columns: list[tuple[str, str]] = field(default_factory=list)   # (table, column) that look personal
    note: str | None = None


# --- what runs -------------------------------------------------------------------------

def running_projects(engine: Engine) -> dict[str, list[Any]]:
    """Running compose projects: name -> their service containers (one-off runs left out)."""
    with engine_call("listing the running compose projects"):
        found = engine.client.containers.list(filters={"label": COMPOSE_PROJECT, "status": "running"})
    out: dict[str, list[Any]] = {}
    for c in found:
        labels = c.labels or {}
        if labels.get("com.docker.compose.oneoff", "False") == "True" or not labels.get(COMPOSE_SERVICE):
            continue
        out.setdefault(labels[COMPOSE_PROJECT], []).append(c)
    return {name: sorted(cs, key=lambda c: c.labels[COMPOSE_SERVICE]) for name, cs in sorted(out.items())}


def _listing(projects: dict[str, list[Any]]) -> str:
    return ", ".join(f"{name} ({', '.join(sorted({c.labels[COMPOSE_SERVICE] for c in cs}))})"
                     for name, cs in projects.items())


def choose(projects: dict[str, list[Any]], wanted: str | None) -> str:
    if wanted:
        if wanted not in projects:
            running = f"Running: {_listing(projects)}." if projects else "No compose project is running."
            raise NotFound(f"no running compose project named {wanted!r}.",
                           f"{running} Start it first (docker-compose -p {wanted} up -d).")
        return wanted
    if not projects:
        raise Refused("no docker compose project is running, so there is nothing to adopt as prod.",
                      "Start prod first (docker-compose up -d), then run repro-tui init again.")
    if len(projects) > 1:
        raise InvalidInput(f"{len(projects)} compose projects are running: {_listing(projects)}.",
                           f"Name the one to adopt: repro-tui init {next(iter(projects))}")
    return next(iter(projects))


# --- PostgreSQL services -------------------------------------------------------------------

def _env(c: Any) -> dict[str, str]:
    out = {}
    for item in (c.attrs.get("Config") or {}).get("Env") or []:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def is_postgres(c: Any) -> bool:
    cfg = c.attrs.get("Config") or {}
    image = str(cfg.get("Image") or "")
    env = _env(c)
    ports = set(cfg.get("ExposedPorts") or {})
    return bool(PG_IMAGE.search(image.lower()) or any(k in env for k in PG_ENV) or "5432/tcp" in ports)


def _psql(engine: Engine, c: Any, user: str, sql: str, db: str = "postgres") -> list[str] | None:
    """Lines of a read-only query run by psql in prod's container, or None."""
    for os_user, args in (("postgres", ["-U", user]), ("postgres", []), ("", ["-U", user])):
        try:
            code, out, _err = engine.exec(c, ["sh", "-c", PATH_PRELUDE + 'exec "$@"', "sh", "psql", "-X", "-A", "-t",
                                              *args, "-d", db, "-c", sql], user=os_user,
                                          what=f"reading the database names in {c.name}")
        except Exception:  # noqa: BLE001 - a guess: the generic placeholders do without it
            return None
        if code == 0:
            return [line for line in out.decode("utf-8", "replace").splitlines() if line.strip()]
    return None


def guess_postgres(engine: Engine, service: str, c: Any) -> PgGuess:
    env = _env(c)
    image = str((c.attrs.get("Config") or {}).get("Image") or "")
    user = env.get("POSTGRES_USER") or env.get("POSTGRESQL_USERNAME") or "postgres"
    g = PgGuess(service=service, image=image, user=user,
                database=env.get("POSTGRES_DB") or env.get("POSTGRESQL_DATABASE") or user)
    dbs = _psql(engine, c, user, "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1")
    if dbs is None:
        g.note = "its databases could not be listed (psql in the container did not answer): check 'database'"
        return g
    g.databases = dbs
    mine = [d for d in dbs if d != "postgres"]
    if g.database not in dbs and len(mine) == 1:
        g.database = mine[0]
    elif g.database not in dbs and mine:
        g.note = f"databases there: {', '.join(mine)}: pick the one to copy"
    cols = _psql(engine, c, user, "SELECT table_schema || '|' || table_name || '|' || column_name FROM "
                 "information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
                 "ORDER BY table_schema, table_name, ordinal_position", g.database) or []
    for line in cols:
        schema, table, column = (line.split("|", 2) + ["", ""])[:3]
        if _strategy(column):
            g.columns.append((table if schema == "public" else f"{schema}.{table}", column))
    return g


def _strategy(column: str) -> str | None:
    low = column.lower()
    for pattern, strategy in PERSONAL:
        if pattern.search(low):
            return strategy
    return None


# --- the file ------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def y(value: str) -> str:
    """A YAML scalar: bare when that reads back as the same string, else JSON-quoted."""
    if _PLAIN.match(value) and value.lower() not in _YAML_WORDS and not re.fullmatch(r"[0-9._e+-]+", value):
        return value
    return json.dumps(value)


def git_branch(root: Path) -> str | None:
    try:
        r = subprocess.run(["git", "symbolic-ref", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                           timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None


def guess_config_files(root: Path, containers: list[Any]) -> list[str]:
    """Files of the workspace that prod's containers mount, and the usual config places."""
    out: list[str] = []
    real = root.resolve()
    for c in containers:
        for m in c.attrs.get("Mounts") or []:
            if m.get("Type") != "bind":
                continue
            try:
                rel = Path(m.get("Source", "")).resolve().relative_to(real)
            except ValueError:
                continue
            src = real / rel
            if str(rel) == ".":
                continue
            pattern = f"{rel.as_posix()}/*" if src.is_dir() else rel.as_posix()
            if pattern not in out:
                out.append(pattern)
    seen = {f for pattern in out for f in root.glob(pattern) if f.is_file()}
    for pattern in CONFIG_GLOBS:
        found = {f for f in root.glob(pattern) if f.is_file()}
        if found - seen:   # only what the patterns so far leave out
            out.append(pattern)
            seen |= found
    return out


def render(project: str, containers: list[Any], stores: list[PgGuess], root: Path, branch: str | None,
           config_files: list[str]) -> str:
    services = sorted({c.labels[COMPOSE_SERVICE] for c in containers})
    labels = containers[0].labels if containers else {}
    lines = [
        f"# repro.yaml for the docker compose project {project!r}, written by `repro-tui init`.",
        "# prod is the running project: repro-tui only reads it (container settings, data).",
        "# Check each line, then commit this file: a clone's service settings come from its worktree.",
        f"# Services seen: {', '.join(services)}.",
    ]
    if labels.get(CONFIG_FILES):
        lines.append(f"# Compose files: {labels[CONFIG_FILES]}")
    work_dir = labels.get(WORKING_DIR)
    if work_dir and Path(work_dir).resolve() != root.resolve():
        lines.append(f"# Note: the project was started from {work_dir}, not from this folder.")
    lines += [
        f"name: {y(project)}",
        "backend: docker",
        "prod:",
        f"  branch: {y(branch or 'main')}" + ("" if branch else "        # no git branch found here: git init first"),
        f"  compose_project: {y(project)}    # adopt the containers compose runs for this project",
    ]
    if stores:
        lines.append("stores:")
        for g in stores:
            lines.append(f"  {y(g.service)}:                      # PostgreSQL in the service {g.service} ({g.image})")
            lines += ["    type: postgres", f"    service: {y(g.service)}", f"    database: {y(g.database)}"
                      + (f"    # {g.note}" if g.note else ""),
                      f"    user: {y(g.user)}",
                      "    # password: read from the service's POSTGRES_PASSWORD when needed; never written here"]
    else:
        lines += ["# stores:                   # no PostgreSQL service was found; e.g.",
                  "#   db: {type: postgres, service: db, database: app, user: postgres}"]
    lines += ["clone:", "  overrides:", "    env:"]
    mail = sorted({k for c in containers for k in _env(c) if MAIL_KEYS.search(k)})
    if mail:
        lines += [f"      # {k}: \"127.0.0.1:1025\"      # outgoing mail to a sink instead of real people"
                  for k in mail]
    else:
        lines.append("      # SMTP_HOST: \"127.0.0.1:1025\"  # e.g. outgoing mail to a sink")
    lines += ["  # scrub: personal data masked in every copy (email, name, phone, null, hash, constant, keep)",
              "  scrub:"]
    if any(g.columns for g in stores):
        for g in stores:
            if not g.columns:
                continue
            lines.append(f"    # {y(g.service)}:")
            for table, column in g.columns:
                lines.append(f"    #   {table}.{column}: {_strategy(column)}")
    else:
        lines += ["    # db:", "    #   users.email: email", "    #   users.phone: phone", "    #   users.name: name"]
    if config_files:
        lines.append("# files diffed key by key between prod and a clone (a guess: check it)")
        lines.append("config_files: [" + ", ".join(y(p) for p in config_files) + "]")
    else:
        lines.append("# config_files: [config/*.yaml, .env]   # files diffed key by key between prod and a clone")
    return "\n".join(lines) + "\n"


def run_init(args: Any) -> int:
    root = Path(getattr(args, "workspace", None) or ".").resolve()
    target = root / SPEC_FILE
    if target.exists():
        raise Refused(f"{target} exists already: init never overwrites it.",
                      "Edit it by hand, or move it away and run repro-tui init again.")
    if not root.is_dir():
        raise NotFound(f"{root} is not a folder.", "Run repro-tui init in the project's repository.")
    engine = Engine("init")
    try:
        projects = running_projects(engine)
        project = choose(projects, getattr(args, "project", None))
        containers = projects[project]
        stores = []
        for c in containers:
            if is_postgres(c):
                stores.append(guess_postgres(engine, c.labels[COMPOSE_SERVICE], c))
    finally:
        engine.close()
    text = render(project, containers, stores, root, git_branch(root), guess_config_files(root, containers))
    parse_spec(text, root)   # what is written must load
    try:
        with open(target, "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise Refused(f"{target} exists already: init never overwrites it.") from None
    services = sorted({c.labels[COMPOSE_SERVICE] for c in containers})
    if getattr(args, "json", False):
        json.dump({"path": str(target), "project": project, "services": services,
                   "stores": {g.service: {"type": "postgres", "database": g.database, "user": g.user}
                              for g in stores}}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(f"wrote {target} for the compose project {project} ({', '.join(services)})\n")
        for g in stores:
            sys.stdout.write(f"  store {g.service}: PostgreSQL database {g.database} "
                             f"({len(g.columns)} column(s) to consider scrubbing, left commented out)\n")
        sys.stdout.write("Next: read it, uncomment the scrub rules you need, commit it, "
                         "then: repro-tui fork prod b1\n")
    return 0
