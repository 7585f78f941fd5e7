"""``repro-tui init [PROJECT]``: write a commented repro.yaml for a running compose project.

It looks at the containers docker compose runs (label ``com.docker.compose.project``),
takes the project named, or the only one, and writes a ``repro.yaml`` that adopts it
(``prod: {compose_project: NAME}``): a PostgreSQL store for each service that runs
PostgreSQL (told by its image, its environment or its port) whose database is the one the app's
connection settings name (``DATABASE_URL``, ``PGDATABASE``, ``POSTGRES_DB``...), every
database of the server considered; scrub rules written ACTIVE for the columns whose names
or sampled values look personal (e-mail, phone, name, address, IP; the sample is never
printed or written); the clone's safe defaults (mail to its sink, payment keys and webhooks
disabled) written as active overrides; a guess of the config files to diff. Each line says
how to turn it off. prod is only read: container settings from the engine, and for a
PostgreSQL service its databases, columns and a sample of values through ``psql`` run in its
container. Passwords are never written: the store reads one from the service's environment.

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

from workbench import egress
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
MAINTENANCE_DATABASES = ("postgres", "template0", "template1")
CONFIG_GLOBS = (".env", "config/*.yaml", "config/*.yml", "config/*.json", "config/*.toml", "config/*.ini",
                "conf/*.yaml", "conf/*.yml", "conf/*.conf", "settings/*.yaml", "settings/*.yml", "*.env")


SAMPLE = 40            # values read per column to tell its shape; never printed nor written
SHAPE_SHARE = 0.6      # the share of a column's sampled values that must have a shape
SHAPES = [
    ("email", re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"), "email"),
    ("ip", re.compile(r"^(\d{1,3}\.){3}\d{1,3}(/\d+)?$|^[0-9a-fA-F:]{3,}:[0-9a-fA-F:]+$"), "null"),
    ("phone", re.compile(r"^\+?[\d ()./-]{7,20}$"), "phone"),
    ("address", re.compile(r"^\d+[a-zA-Z]?,? [\w .'-]+ (street|st|road|rd|avenue|ave|lane|ln|way|drive|dr|blvd|"
                           r"boulevard|strasse|straße|weg|platz|rue|via|calle)\b", re.IGNORECASE), "null"),
    ("name", re.compile(r"^[A-ZÀ-Ý][a-zà-ÿ'’-]+( [A-ZÀ-Ý][a-zà-ÿ'’-]+){1,3}$"), "name"),
]
APP_DB_KEYS = ("PGDATABASE", "POSTGRES_DB", "POSTGRESQL_DATABASE", "DB_NAME", "DATABASE_NAME", "DB_DATABASE")


@dataclass
class PgGuess:
    service: str
    image: str
    database: str
    user: str
    databases: list[str] = field(default_factory=list)
    columns: list[tuple[str, str, str, str]] = field(default_factory=list)   # (table, column, strategy, why)
    note: str | None = None
    chosen_by: str = ""


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


def app_databases(containers: list[Any], service: str) -> list[tuple[str, str]]:
    """(database, the setting that names it) from the other services' connection settings: a
    postgres:// URL whose host is ``service`` (or any host), or PGDATABASE, POSTGRES_DB..."""
    out: list[tuple[str, str]] = []
    for c in containers:
        if c.labels.get(COMPOSE_SERVICE) == service:
            continue
        name = c.labels.get(COMPOSE_SERVICE)
        for key, value in sorted(_env(c).items()):
            for url in re.findall(r"postgres(?:ql)?(?:\+\w+)?://[^\s,;'\"]+", value):
                m = re.match(r"[^:]+://(?:[^@/]*@)?([^:/?]+)(?::\d+)?/([^?/]+)", url)
                if m and m.group(2) and (m.group(1) == service or "." in m.group(1) or m.group(1) == "localhost"):
                    out.append((m.group(2), f"{name}.{key}"))
            if key in APP_DB_KEYS and value:
                out.append((value, f"{name}.{key}"))
    return out


def guess_postgres(engine: Engine, service: str, c: Any, containers: list[Any] | None = None) -> PgGuess:
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
    named = [(d, why) for d, why in app_databases(containers or [], service) if d in dbs]
    if named:   # the app's own database: the one its connection settings name
        g.database, g.chosen_by = named[0][0], named[0][1]
        others = sorted({d for d, _ in named} - {g.database})
        if others:
            g.note = f"the app also names {', '.join(others)}: add a store for each database to copy"
    elif g.database not in dbs and len(mine) == 1:
        g.database, g.chosen_by = mine[0], "the only database of the server"
    elif (g.database not in dbs or g.database == "postgres") and mine:
        g.note = f"databases there: {', '.join(mine)}: pick the one the app uses"
    if g.database in dbs:
        g.columns = personal_columns(engine, c, user, g.database)
    return g


def personal_columns(engine: Engine, c: Any, user: str, db: str) -> list[tuple[str, str, str, str]]:
    """Columns that hold personal data, told by their names and by the shape of a sample of
    their values: (table, column, strategy, why). The sample stays in this function."""
    cols = _psql(engine, c, user, "SELECT table_schema || '|' || table_name || '|' || column_name || '|' || "
                 "is_nullable || '|' || data_type FROM information_schema.columns JOIN information_schema.tables USING "
                 "(table_catalog, table_schema, table_name) WHERE table_type = 'BASE TABLE' AND table_schema "
                 "NOT IN ('pg_catalog', 'information_schema') ORDER BY table_schema, table_name, ordinal_position",
                 db) or []
    out = []
    for line in cols:
        schema, table, column, nullable, kind = (line.split("|", 4) + ["", "", "", ""])[:5]
        shown = table if schema == "public" else f"{schema}.{table}"
        by_name = _strategy(column) if column.lower() != "name" else None   # a bare "name" may be a product's
        found = (by_name, "by-name") if by_name else None
        if found is None and kind in ("text", "character varying", "character", "inet", "cidr", "citext"):
            shape = _shape_of(_sample(engine, c, user, db, schema, table, column))
            found = (shape[1], shape[0]) if shape else None
        if found is None:
            continue
        strategy = "hash" if found[0] == "null" and nullable == "NO" else found[0]   # NOT NULL: a keyed hash
        out.append((shown, column, strategy, found[1]))
    return out


def _qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sample(engine: Engine, c: Any, user: str, db: str, schema: str, table: str, column: str) -> list[str]:
    rows = _psql(engine, c, user, f"SELECT {_qi(column)}::text FROM {_qi(schema)}.{_qi(table)} WHERE "
                 f"{_qi(column)} IS NOT NULL AND {_qi(column)}::text <> '' LIMIT {SAMPLE}", db)
    return rows or []


def _shape_of(values: list[str]) -> tuple[str, str] | None:
    """(shape, strategy) when most sampled values have one shape."""
    values = [v.strip() for v in values if v.strip()]
    if len(values) < 3:
        return None
    for shape, pattern, strategy in SHAPES:
        if sum(1 for v in values if pattern.search(v)) >= SHAPE_SHARE * len(values):
            return shape, strategy
    return None


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


def _safe_defaults(containers: list[Any]) -> list[tuple[str, str, str]]:
    """(name, value, why) of every safe default the running services' settings call for."""
    out: dict[str, tuple[str, str, str]] = {}
    for c in containers:
        for d in egress.clone_defaults(_env(c), set()):
            out.setdefault(d.key, (d.key, d.value, d.reason))
    return sorted(out.values())


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
    usable = [g for g in stores if g.database not in MAINTENANCE_DATABASES]
    if stores:
        lines.append("stores:")
        for g in stores:
            off = "# " if g not in usable else ""
            if off:
                lines.append(f"  # {g.service}: its database is {g.database!r}, the server's maintenance database, "
                             "which a clone cannot copy: move the app's data into a database of its own, then "
                             "name it here")
            lines.append(f"  {off}{y(g.service)}:                      # PostgreSQL in the service {g.service} "
                         f"({g.image})")
            why = f"    # chosen by {g.chosen_by}" if g.chosen_by else ""
            lines += [f"  {off}  type: postgres", f"  {off}  service: {y(g.service)}",
                      f"  {off}  database: {y(g.database)}" + (f"    # {g.note}" if g.note else why),
                      f"  {off}  user: {y(g.user)}",
                      f"  {off}  # password: read from the service's POSTGRES_PASSWORD when needed; never written here"]
    else:
        lines += ["# stores:                   # no PostgreSQL service was found; e.g.",
                  "#   db: {type: postgres, service: db, database: app, user: postgres}"]
    lines += ["clone:", "  overrides:"]
    defaults = _safe_defaults(containers)
    if defaults:
        lines += ["    # A clone never mails, charges or calls a real person: these settings point at its own",
                  "    # mail sink (repro-tui mail CLONE) or at nothing. They are a clone's defaults anyway; to",
                  "    # let clones use prod's value of one, write that value here instead of the line.",
                  "    env:"]
        width = max(len(k) + len(v) for k, v, _ in defaults) + 10
        for key, value, why in defaults:
            lines.append(f"      {(key + ': ' + json.dumps(value)).ljust(width)}# {why}")
    else:
        lines += ["    env: {}                    # e.g. SMTP_HOST: \"{mail.host}\"  (the clone's mail sink)"]
    lines += ["  # scrub: personal data masked in every copy (email, name, phone, null, hash, constant, keep).",
              "  # Found by column names and by the shape of a sample of values. To copy a column as it is,",
              "  # write 'keep' as its strategy (deleting the line does the same, silently).",
              "  scrub:"]
    found = [g for g in usable if g.columns]
    if found:
        for g in found:
            lines.append(f"    {y(g.service)}:")
            for table, column, strategy, why in g.columns:
                article = "an" if why[0] in "aeiou" else "a"
                reason = "its column name" if why == "by-name" else f"its values look like {article} {why}"
                lines.append(f"      {(table + '.' + column + ': ' + strategy).ljust(40)}# {reason}")
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
                stores.append(guess_postgres(engine, c.labels[COMPOSE_SERVICE], c, containers))
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
                   "stores": {g.service: {"type": "postgres", "database": g.database, "user": g.user,
                                          "chosen_by": g.chosen_by, "databases": g.databases,
                                          "scrubbed": [f"{t}.{c}" for t, c, _, _ in g.columns]}
                              for g in stores}}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(f"wrote {target} for the compose project {project} ({', '.join(services)})\n")
        for g in stores:
            if g.database in MAINTENANCE_DATABASES:
                sys.stdout.write(f"  store {g.service}: left out: its database {g.database!r} is the server's "
                                 "maintenance database, which a clone cannot copy (see the note in the file)\n")
                continue
            chosen = f", chosen by {g.chosen_by}" if g.chosen_by else ""
            sys.stdout.write(f"  store {g.service}: PostgreSQL database {g.database}{chosen}; "
                             f"{len(g.columns)} column(s) scrubbed\n")
        defaults = _safe_defaults(containers)
        if defaults:
            sys.stdout.write(f"  overrides: {', '.join(k for k, _, _ in defaults)} (mail to each clone's sink, "
                             "payment keys and webhooks disabled)\n")
        sys.stdout.write("Next: read it (every rule is active; each comment says how to turn it off), commit it, "
                         "then: repro-tui fork prod b1\n")
    return 0
