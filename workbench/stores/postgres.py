"""The PostgreSQL store: a database in a container of the docker backend.

* **fork** copies prod's whole cluster online: ``pg_basebackup -D - -Ft -X fetch -c fast``
  run by ``docker exec`` in prod's container (its local replication connection is trusted
  by default, a network one often is not), streamed through the Engine API into the
  clone's new volume. prod is only read. ``pg_dump``/``pg_restore`` is the fallback.
* **scrub** keeps the privacy promise: the rules are applied in a private server on the
  copy (no network), with the same deterministic values as SQLite (``workbench.scrub``);
  then ANALYZE (statistics hold sample values), ``VACUUM FULL`` of the scrubbed tables and
  of ``pg_statistic`` (no dead row keeps an original), a clean shutdown and
  ``pg_resetwal`` (no WAL segment keeps one: neither the backup's nor the scrub's full
  page images). Server logs copied from prod are removed.
* **snapshot** is ``CREATE DATABASE "db@snap-NAME" TEMPLATE db`` inside the clone's own
  server; only the clone's connections are ended, never prod's.
* **reset** is O(1): two ``ALTER DATABASE ... RENAME`` in one transaction swap a ready
  copy in (``db@ready``) and keep the replaced one (``db@undo``) for undo. The ready copy
  is re-made in the background, and replaced copies are dropped there too
  (``DROP DATABASE`` forces a checkpoint: never on the reset's path).

Every statement goes through ``psql`` in the server's container (``workbench.psql``), as
the ``postgres`` system user (Debian's PostgreSQL authenticates local connections by peer),
so a remote engine works the same and no password is needed or printed. The store reaches
its servers through a ``PgHost`` (the Docker backend), never by importing a backend.

Longer than most modules (about 700 lines), on purpose: the fork (base backup, dump and
restore, copy of a clone), the private scrub server and the database-level snapshot, reset
and undo are one store's steps and share its names and its servers.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workbench.errors import BackendError, InvalidInput, NotFound, Refused
from workbench.fence import Fence
from workbench.names import FORKED, PROD
from workbench.psql import PATH_PRELUDE, PgHost, PgServer, last_error, qi, ql
from workbench.scrub import name_part, scrub_value, workspace_key
from workbench.spec import ScrubRule, Spec, StoreSpec
from workbench.stores.base import Progress, Store

SNAP_PREFIX = "snap-"
NOT_OWNER = 3          # exit code of a private server whose data files another uid owns
READY = "ready"
UNDO = "undo"
SWAP = "swap"
TRASH = "trash-"
MAX_IDENT = 63


MAINTENANCE_DATABASES = ("postgres", "template0", "template1")


class PostgresStore(Store):
    """One PostgreSQL database of a docker service, for every environment."""

    def __init__(self, spec: Spec, store: StoreSpec, repro_dir: Path, backend: Any,
                 fence: Fence | None = None) -> None:
        super().__init__(spec, store, repro_dir, fence)
        if backend is None or getattr(backend, "name", "") != "docker":
            raise InvalidInput(f"store '{store.name}': postgres stores need 'backend: docker'.")
        self.backend: PgHost = backend
        assert store.service and store.database and store.user
        self.service = store.service
        self.db = store.database
        self.user = store.user

    # --- names ----------------------------------------------------------------------------
    def dbname(self, kind: str) -> str:
        """``db@snap-s1``, ``db@ready``, ``db@undo``: the copies beside the live database."""
        name = f"{self.db}@{kind}"
        if len(name.encode()) <= MAX_IDENT:
            return name
        import hashlib

        short = hashlib.sha256(self.db.encode()).hexdigest()[:6]
        room = MAX_IDENT - len(kind.encode()) - 8
        return f"{self.db.encode()[:room].decode('utf-8', 'ignore')}~{short}@{kind}"

    def snap_db(self, snapshot: str) -> str:
        return self.dbname(SNAP_PREFIX + snapshot)

    def _password(self, env: str) -> str | None:
        if self.store.password:
            return self.store.password
        try:
            place = self.backend.pg_place(env, self.service)
        except (NotFound, BackendError):
            return None
        return place.env.get("POSTGRES_PASSWORD") or place.env.get("PGPASSWORD")

    # --- where things are -------------------------------------------------------------------
    def prod_location(self) -> str:
        return f"postgresql://{self.user}@{self.service}/{self.db}"

    def location(self, env: str) -> str:
        return f"postgresql://{self.user}@{self.backend.container_name(env, self.service)}/{self.db}"

    def snapshot_location(self, env: str, snapshot: str) -> str:
        return f"postgresql://{self.user}@{self.backend.container_name(env, self.service)}/{self.snap_db(snapshot)}"

    # --- state kept beside the workspace (read without a server) ----------------------------
    def _state_file(self, env: str) -> Path:
        return self.repro_dir / "data" / env / f"{self.name}.postgres.json"

    def _state(self, env: str) -> dict[str, Any]:
        try:
            return json.loads(self._state_file(env).read_text())
        except (OSError, ValueError):
            return {}

    def _set_state(self, env: str, **values: Any) -> None:
        path = self._state_file(env)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {**self._state(env), **values}
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)

    # --- servers -------------------------------------------------------------------------------
    def prod_server(self) -> PgServer:
        c = self.backend.prod_container(self.service)
        if c.status != "running":
            raise Refused(f"prod's {self.service} container ({c.name}) is not running: its database cannot be read.",
                          "Start prod first; repro-tui never starts prod's containers.")
        return PgServer(self.backend.engine, c, self.user, self._password("prod"))

    @contextmanager
    def server(self, env: str) -> Iterator[PgServer]:
        """The clone's server: its container when it runs; else the container is started for
        the time of the block (or, before the first start, a private server on its volume)."""
        if env == "prod":
            yield self.prod_server()
            return
        c = self.backend.engine.container(self.backend.container_name(env, self.service))
        if c is not None and c.labels.get("repro.workspace") != self.backend.workspace_id:
            raise Refused(f"{c.name} is not a container of this workspace.")
        if c is not None and c.status == "running":
            srv = PgServer(self.backend.engine, c, self.user, self._password(env))
            try:
                try:
                    srv.psql("SELECT 1")   # opens the session the block will use
                except BackendError:
                    self._wait_ready(srv)  # still starting
                yield srv
            finally:
                srv.close()
            return
        if c is not None:
            self.backend.engine_start(c)
            srv = PgServer(self.backend.engine, c, self.user, self._password(env))
            try:
                self._wait_ready(srv)
                yield srv
            finally:
                srv.close()
                self.backend.stop_container(c)
            return
        with self.private_server(env) as srv:
            yield srv

    @contextmanager
    def private_server(self, env: str, fresh_copy: bool = False, reset_wal: bool = False) -> Iterator[PgServer]:
        """A server on the clone's volume with no network, stopped cleanly at the end.

        ``fresh_copy``: the data directory was just copied from a running server; its pid
        and log files are removed first. ``reset_wal``: after the clean stop, ``pg_resetwal``
        leaves no WAL segment of the server's life (they hold full-page images of rows as
        they were before the scrub). Both run in the server's own container."""
        place = self.backend.pg_place(env, self.service)
        vol = place.volume
        for attempt in (1, 2):
            c = self._private_container(env, place.image, place.pgdata, vol, place.target, fresh_copy, reset_wal)
            try:
                srv = PgServer(self.backend.engine, c, self.user, self._password(env))
                try:
                    self._wait_ready(srv)
                except BackendError:
                    c.reload()
                    if attempt == 1 and (c.attrs.get("State") or {}).get("ExitCode") == NOT_OWNER:
                        self._fix_owner(env, place.image, vol, place.target, place.pgdata)
                        continue
                    raise
                try:
                    yield srv
                finally:
                    srv.close()
                self._stop_private(env, c)
                return
            finally:
                self.backend.engine.remove_container(c)

    def _private_container(self, env: str, image: str, pgdata: str, vol: str, target: str, fresh_copy: bool,
                           reset_wal: bool) -> Any:
        from workbench.docker_engine import engine_call

        engine = self.backend.engine
        script = [PATH_PRELUDE + 'cd "$PGDATA" || exit 1']
        if fresh_copy:
            script.append(f'[ -O . ] && [ -O PG_VERSION ] || exit {NOT_OWNER}; rm -rf log pg_log postmaster.pid '
                          'postmaster.opts standby.signal recovery.signal; chmod 700 .')
        # postgres runs as a child so that something can follow its stop; INT/TERM reach it as
        # a fast shutdown (a clean one, with a final checkpoint)
        script.append("postgres -D \"$PGDATA\" -c listen_addresses='' -c wal_recycle=off & pid=$!; "
                      "trap 'kill -INT $pid' INT TERM; wait $pid; rc=$?; "
                      "if kill -0 $pid 2>/dev/null; then wait $pid; rc=$?; fi; [ $rc = 0 ] || exit $rc")
        if reset_wal:
            script.append('pg_resetwal -D "$PGDATA" >/dev/null || exit 1; '
                          'rm -f "$PGDATA"/pg_wal/archive_status/* "$PGDATA"/backup_manifest')
        with engine_call(f"starting a private server for {env}'s {self.name}"):
            c = engine.client.containers.create(
                image, entrypoint=["sh", "-c", "; ".join(script)], command=[], user="postgres",
                environment={"PGDATA": pgdata}, volumes={vol: {"bind": target, "mode": "rw"}},
                labels=engine.labels(env, self.service, "helper"), network_mode="none",
                name=engine.name(env, self.service, "pg", uuid.uuid4().hex[:6]), detach=True)
            c.start()
        return c

    def _stop_private(self, env: str, c: Any) -> None:
        from workbench.docker_engine import engine_call

        with engine_call("stopping the private server"):
            c.kill(signal="SIGINT")
            result = c.wait(timeout=300)
        if result.get("StatusCode", 1) != 0:
            raise BackendError(f"the private server of {env}'s {self.name} did not stop cleanly:\n"
                               + c.logs(tail=5).decode("utf-8", "replace"))

    def _wait_ready(self, srv: PgServer, timeout: float = 60) -> None:
        from workbench.docker_engine import wait_until

        def ready() -> bool:
            code, _o, _e = srv._exec(["pg_isready", "-q", "-h", "/var/run/postgresql"], "")
            if code == 0:
                return True
            srv.container.reload()
            if srv.container.status != "running":
                raise BackendError(f"{srv.name} stopped while starting:\n"
                                   + srv.container.logs(tail=8).decode("utf-8", "replace"))
            return False

        if not wait_until(ready, timeout, 0.05):
            raise BackendError(f"PostgreSQL in {srv.name} did not accept connections within {timeout:.0f} s.")

    # --- checks ---------------------------------------------------------------------------------
    def check(self, rules: list[ScrubRule]) -> None:
        if self.db in MAINTENANCE_DATABASES:
            raise Refused(f"store '{self.name}' names the database {self.db!r}, the server's own maintenance "
                          "database: a clone's copy is snapshotted and reset by renaming databases, which "
                          "PostgreSQL does not allow for it.",
                          "Keep the app's data in a database of its own (CREATE DATABASE app), and name that one "
                          f"as 'database' of store '{self.name}' in repro.yaml.")
        srv = self.prod_server()
        if self.db not in srv.databases():
            raise NotFound(f"prod's server ({srv.name}) has no database named {self.db!r}.",
                           f"Check 'database' of store '{self.name}' in repro.yaml.")
        self.resolve_rules(srv, rules)

    def resolve_rules(self, srv: PgServer, rules: list[ScrubRule]) -> list[tuple[str, str, str, ScrubRule]]:
        """(schema, table, column, rule) as the database spells them; unknown names refused,
        with the nearest name. Unquoted names match as PostgreSQL folds them (lower case),
        or case-insensitively when that is unambiguous."""
        if not rules:
            return []
        cols = srv.query("SELECT table_schema AS s, table_name AS t, column_name AS c FROM information_schema.columns "
                         "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')", self.db)
        out = []
        for r in rules:
            schema, table = (r.table.split(".", 1) if "." in r.table else (None, r.table))
            cand = [c for c in cols if (schema is None or _name_eq(c["s"], schema))]
            tables = {(c["s"], c["t"]) for c in cand if _name_eq(c["t"], table)}
            if not tables:
                names = sorted({c["t"] for c in cand})
                raise InvalidInput(f"scrub rule {self.name}.{r.target}: prod's database {self.db} has no table "
                                   f"{r.table!r}.", _nearest(table, names))
            if len(tables) > 1:
                tables = {t for t in tables if t[0] == "public"} or tables
            s, t = sorted(tables)[0]
            columns = [c["c"] for c in cand if c["s"] == s and c["t"] == t]
            col = next((c for c in columns if c == r.column), None) or next(
                (c for c in columns if _name_eq(c, r.column)), None)
            if col is None:
                raise InvalidInput(f"scrub rule {self.name}.{r.target}: the table {t} has no column {r.column!r}.",
                                   _nearest(r.column, columns))
            out.append((s, t, col, r))
        return out

    # --- fork -------------------------------------------------------------------------------------
    def fork(self, dest: str, source: str | None, source_snapshot: str | None, rules: list[ScrubRule],
             progress: Progress | None = None) -> None:
        say = progress or (lambda _t: None)
        place = self.backend.pg_place(dest, self.service)
        vol = place.volume
        rel = os.path.relpath(place.pgdata, place.target) if place.pgdata != place.target else ""
        restore_from: PgServer | None = None
        if source is None:
            src = self.prod_server()
            say(f"copying {self.name} online (pg_basebackup)")
            if not self._base_backup(src, dest, place.image, vol, rel, place.target, say):
                say(f"pg_basebackup failed ({getattr(self, '_base_backup_error', 'no detail')}): copying "
                    f"{self.name} by pg_dump | pg_restore instead")
                self._new_cluster(src, dest, place.image, vol, place.target, place.pgdata)
                restore_from = src
        else:
            self._copy_clone(source, dest, place.image, vol, rel, place.target, say)
        # one private server for all that follows: the copy made fit to run, restored, scrubbed,
        # its 'forked' snapshot taken; after its clean stop, new WAL when it held original values
        say(f"starting a private server on the copy of {self.name}")
        with self.private_server(dest, fresh_copy=True, reset_wal=source is None and bool(rules)) as srv:
            if restore_from is not None:
                self._dump_restore(restore_from, srv, say)
            if source is None:
                if rules:
                    say(f"scrubbing {self.name}")
                    self.scrub(srv, rules)
            else:
                self._keep_only(srv, source_snapshot)
            say(f"keeping {self.name} as it was forked (snapshot 'forked')")
            self._copy_db(srv, self.db, self.snap_db(FORKED))
            say(f"stopping the private server of {self.name}")
        self._set_state(dest, ready=None, undo=False, snapshot_made=FORKED)

    def _base_backup(self, src: PgServer, dest: str, image: str, vol: str, rel: str, target: str,
                     say: Progress, source: str = PROD) -> bool:
        engine = self.backend.engine
        path = f"/vol/{rel}".rstrip("/")

        def empty_folder() -> None:
            engine.helper(dest, image, f"set -e; mkdir -p {path}; find {path} -mindepth 1 -maxdepth 1 -exec rm -rf "
                          f"{{}} +; chown postgres:postgres {path} 2>/dev/null || true; chmod 700 {path}",
                          {vol: {"bind": "/vol", "mode": "rw"}}, "preparing the volume", self.service)

        empty_folder()
        if self._direct_base_backup(src, dest, image, vol, path, self._password(source)):
            return True
        say(f"no replication login over TCP for {self.user}: streaming the copy of {self.name} from inside "
            "prod's container instead")
        empty_folder()
        from workbench.docker_engine import engine_call

        name = engine.name(dest, self.service, "untar", uuid.uuid4().hex[:6])
        with engine_call("making the helper that receives the copy"):
            helper = engine.client.containers.create(image, entrypoint=["true"], command=[], name=name,
                                                     volumes={vol: {"bind": "/vol", "mode": "rw"}},
                                                     labels=engine.labels(dest, self.service, "helper"),
                                                     network_mode="none")
        code, err = 1, b""
        try:
            # the postgres role of the postgres system user first (a superuser: replication
            # allowed), then the store's user
            for args in ([], ["-U", self.user]):
                argv = ["pg_basebackup", "-D", "-", "-Ft", "-X", "fetch", "-c", "fast", *args]
                body, result = engine.exec_stream(src.container, ["sh", "-c", PATH_PRELUDE + 'exec "$@"', "sh", *argv],
                                                  user="postgres", what=f"pg_basebackup in {src.name}")
                first = next(body, b"")
                if not first:
                    code, err = result()
                    continue

                def stream(first: bytes = first, rest: Iterator[bytes] = body) -> Iterator[bytes]:
                    yield first
                    yield from rest

                engine.put_archive(helper, path, stream(), f"copying {self.name} into {vol}")
                code, err = result()
                break
        finally:
            engine.remove_container(helper)
        if code != 0:
            self._base_backup_error = last_error(err.decode("utf-8", "replace"))
            return False
        return True   # the private server that runs on it next removes prod's pid and log files

    def _direct_base_backup(self, src: PgServer, dest: str, image: str, vol: str, path: str,
                            password: str | None) -> bool:
        """pg_basebackup run beside prod's server — a helper in its network, never in its
        container — writing straight into the clone's volume: the copy goes at the speed of
        pg_basebackup to a disk, not through repro-tui. It needs a replication login over
        TCP (the store's password, or the source's ``POSTGRES_PASSWORD``, or trust); without one,
        False, and the copy is streamed from inside prod's container instead."""
        engine = self.backend.engine
        port = self.store.port or 5432
        script = (PATH_PRELUDE + f"exec pg_basebackup -h 127.0.0.1 -p {port} -U {shlex.quote(self.user)} "
                  f"-D {path} -X fetch -c fast -w")
        try:
            engine.helper(dest, image, script, {vol: {"bind": "/vol", "mode": "rw"}},
                          "pg_basebackup beside prod's server", self.service, user="postgres",
                          network=f"container:{src.container.id}",
                          environment={"PGPASSWORD": password} if password else None)
        except BackendError:
            return False
        return True

    def _fix_owner(self, env: str, image: str, vol: str, target: str, pgdata: str) -> None:
        """A copy whose files the image's postgres user does not own (another uid in prod's
        image): chown them, as root, in a helper."""
        self.backend.engine.helper(
            env, image, f'set -e; cd "{pgdata}"; owner=$(stat -c %u:%g PG_VERSION 2>/dev/null || '
            f'echo postgres:postgres); chown -R postgres:postgres . 2>/dev/null || chown -R $owner .; chmod 700 .',
            {vol: {"bind": target, "mode": "rw"}}, "fixing the copy's owner", self.service)

    # --- the fallback: pg_dump | pg_restore ---------------------------------------------------
    def _new_cluster(self, src: PgServer, dest: str, image: str, vol: str, target: str, pgdata: str) -> None:
        """An empty cluster in the clone's volume, made by ``initdb`` of the service's own
        image, with prod's bootstrap superuser and prod's access rules (pg_hba.conf,
        pg_ident.conf, postgresql.auto.conf: read from prod, when they live in its data
        directory), so that the clone's clients log in as they do in prod."""
        engine = self.backend.engine
        superuser = str(src.value("SELECT rolname FROM pg_roles WHERE oid = 10") or "postgres")
        files: dict[str, str] = {}
        try:
            data_dir = str(src.value("SELECT current_setting('data_directory') AS d"))
            for setting in ("hba_file", "ident_file"):
                path = str(src.value(f"SELECT current_setting('{setting}') AS f"))
                if path.startswith(data_dir.rstrip("/") + "/"):
                    files[os.path.basename(path)] = path
            files["postgresql.auto.conf"] = f"{data_dir}/postgresql.auto.conf"
        except BackendError:
            files = {}   # the store's user may not read settings: the image's defaults then
        script = [PATH_PRELUDE + "set -e",
                  f'initdb -D "{pgdata}" -U {shlex.quote(superuser)} -E UTF8 --locale=C >/dev/null']
        for name, path in files.items():
            code, out, _err = src._exec(["cat", path], "postgres")
            if code == 0:
                blob = base64.b64encode(out.encode()).decode()
                script.append(f'printf %s {blob} | base64 -d > "{pgdata}/{name}"')
        engine.helper(dest, image, f'set -e; mkdir -p "{pgdata}"; '
                      f'find "{target}" -mindepth 1 -maxdepth 1 -exec rm -rf {{}} +; mkdir -p "{pgdata}"; '
                      f'chown postgres "{target}" "{pgdata}"; chmod 700 "{pgdata}"',
                      {vol: {"bind": target, "mode": "rw"}}, "preparing the volume", self.service)
        engine.helper(dest, image, "; ".join(script), {vol: {"bind": target, "mode": "rw"}},
                      "making an empty cluster", self.service, user="postgres")

    def _dump_restore(self, src: PgServer, dest: PgServer, say: Progress) -> None:
        """prod's roles and database into the new cluster: ``pg_dumpall --roles-only`` and
        ``pg_dump -Fc`` run in prod's container (reading only), streamed through the Engine
        API into ``pg_restore --create`` in the clone's private server."""
        engine = self.backend.engine
        args = src._connect_args()
        code, roles, err = src._exec(["pg_dumpall", "--roles-only", *args], src._os_user)
        if code == 0:
            superuser = str(dest.value("SELECT rolname FROM pg_roles WHERE oid = 10"))
            lines = [line for line in roles.splitlines() if line.strip() != f"CREATE ROLE {qi(superuser)};"
                     and line.strip() != f"CREATE ROLE {superuser};"]
            dest.run_script("\n".join(lines), "postgres")
        else:
            say(f"prod's roles could not be read ({last_error(err)}): {self.name} restored without them")
        say(f"copying {self.name}: pg_dump | pg_restore")
        body, result = engine.exec_stream(src.container, ["sh", "-c", PATH_PRELUDE + 'exec "$@"', "sh", "pg_dump",
                                                          "-Fc", *args, "-d", self.db],
                                          user=src._os_user, what=f"pg_dump in {src.name}")
        dest_args = dest._connect_args()
        code, out = engine.exec_stdin(dest.container, ["sh", "-c", PATH_PRELUDE + 'exec "$@"', "sh", "pg_restore",
                                                       "--create", "--exit-on-error", *dest_args, "-d", "postgres"],
                                      body, user=dest._os_user, what=f"pg_restore in {dest.name}")
        dump_code, dump_err = result()
        if dump_code != 0:
            raise BackendError(f"pg_dump of {self.name} in prod's {src.name} failed: "
                               f"{last_error(dump_err.decode('utf-8', 'replace'))}",
                               "prod was only read; the clone was not made.")
        if code != 0:
            raise BackendError(f"pg_restore of {self.name} into the clone failed: "
                               f"{last_error(out.decode('utf-8', 'replace'))}",
                               "prod was only read; the clone was not made.")

    def _copy_clone(self, source: str, dest: str, image: str, vol: str, rel: str, target: str, say: Progress) -> None:
        c = self.backend.engine.container(self.backend.container_name(source, self.service))
        if c is not None and c.status == "running":
            say(f"copying {source}'s {self.name} online")
            srv = PgServer(self.backend.engine, c, self.user, self._password(source))
            if self._base_backup(srv, dest, image, vol, rel, target, say, source):
                return
        src_vol = self.backend.pg_place(source, self.service).volume
        say(f"copying {source}'s {self.name} volume")
        self.backend.engine.copy_volume(dest, image, src_vol, vol, f"copy of {source}'s {self.name}", self.service)

    def _keep_only(self, srv: PgServer, snapshot: str | None) -> None:
        """In a copy of a clone's server: the live database becomes the chosen snapshot's,
        and the other copies (snapshots, ready, undo) are dropped."""
        dbs = srv.databases()
        if snapshot:
            snap = self.snap_db(snapshot)
            if snap not in dbs:
                raise NotFound(f"the snapshot {snapshot!r} has no database {snap!r} in the copy.")
            srv.psql(f"DROP DATABASE IF EXISTS {qi(self.db)}")
            srv.psql(f"ALTER DATABASE {qi(snap)} RENAME TO {qi(self.db)}")
            srv.psql(f"ALTER DATABASE {qi(self.db)} WITH ALLOW_CONNECTIONS true")
            dbs = srv.databases()
        for d in sorted(dbs):
            if d.startswith(self.db + "@") or d.startswith(self.dbname("")):
                srv.psql(f"DROP DATABASE IF EXISTS {qi(d)}")

    # --- scrub ----------------------------------------------------------------------------------
    def scrub(self, srv: PgServer, rules: list[ScrubRule]) -> None:
        """Apply the rules in the copy, then leave no original value in its files: ANALYZE
        (new statistics), VACUUM FULL of the scrubbed tables and of pg_statistic (no dead
        row), CHECKPOINT. The caller removes the WAL after a clean shutdown."""
        key = workspace_key(self.repro_dir)
        resolved = self.resolve_rules(srv, rules)
        by_table: dict[tuple[str, str], list[tuple[str, ScrubRule]]] = {}
        for s, t, c, r in resolved:
            by_table.setdefault((s, t), []).append((c, r))
        script = []
        for (s, t), cols in by_table.items():
            table = f"{qi(s)}.{qi(t)}"
            for col, rule in cols:
                if rule.strategy == "keep":
                    continue
                if rule.strategy == "null":
                    script.append(f"UPDATE {table} SET {qi(col)} = NULL WHERE {qi(col)} IS NOT NULL;")
                    continue
                if rule.strategy == "constant":
                    script.append(f"UPDATE {table} SET {qi(col)} = {ql(rule.value)}::text::"
                                  f"{self._col_type(srv, s, t, col)} WHERE {qi(col)} IS NOT NULL;")
                    continue
                values = srv.query(f"SELECT DISTINCT {qi(col)}::text AS v FROM {table} WHERE {qi(col)} IS NOT NULL",
                                   self.db)
                param = name_part(col) if rule.strategy == "name" else None
                pairs = [(row["v"], scrub_value(row["v"], rule.strategy, param, key)) for row in values]
                if not pairs:
                    continue
                typ = self._col_type(srv, s, t, col)
                for i in range(0, len(pairs), 5000):
                    chunk = pairs[i:i + 5000]
                    rows = ",\n".join(f"({ql(a)}, {ql(b)})" for a, b in chunk)
                    script.append(f"UPDATE {table} AS t SET {qi(col)} = m.new::{typ} FROM (VALUES {rows}) "
                                  f"AS m(old, new) WHERE t.{qi(col)}::text = m.old;")
        if script:
            srv.run_script("\n".join(script), self.db)
        tables = ", ".join(f"{qi(s)}.{qi(t)}" for s, t in by_table)
        if tables:
            srv.psql(f"ANALYZE {tables}", self.db)
            srv.psql(f"VACUUM (FULL) {tables}, pg_catalog.pg_statistic", self.db)
        srv.psql("CHECKPOINT", self.db)

    def _col_type(self, srv: PgServer, schema: str, table: str, col: str) -> str:
        return str(srv.value(f"SELECT format_type(a.atttypid, a.atttypmod) AS t FROM pg_attribute a "
                             f"WHERE a.attrelid = {ql(qi(schema) + '.' + qi(table))}::regclass "
                             f"AND a.attname = {ql(col)}", self.db))

    # --- snapshots ------------------------------------------------------------------------------
    def snapshot(self, env: str, snapshot: str) -> None:
        if self._state(env).get("snapshot_made") == snapshot:   # taken by fork, in its private server
            self._set_state(env, snapshot_made=None)
            return
        snap = self.snap_db(snapshot)
        with self.server(env) as srv:
            self._copy_db(srv, self.db, snap)

    def _copy_db(self, srv: PgServer, template: str, new: str) -> None:
        """``CREATE DATABASE new TEMPLATE template``: the template may have no connection, so
        the clone's own are ended (with new ones held off for the moment it takes)."""
        srv.psql(f"DROP DATABASE IF EXISTS {qi(new)}")
        srv.psql(f"ALTER DATABASE {qi(template)} WITH ALLOW_CONNECTIONS false")
        try:
            for attempt in range(50):
                srv.terminate(template)
                try:
                    srv.psql(f"CREATE DATABASE {qi(new)} TEMPLATE {qi(template)}{_file_copy(srv)}")
                    break
                except BackendError as exc:
                    if "being accessed by other users" not in str(exc) or attempt == 49:
                        raise
                    time.sleep(0.05)
        finally:
            srv.psql(f"ALTER DATABASE {qi(template)} WITH ALLOW_CONNECTIONS true")

    def delete_snapshot(self, env: str, snapshot: str) -> None:
        with self.server(env) as srv:
            srv.terminate(self.snap_db(snapshot))
            srv.psql(f"DROP DATABASE IF EXISTS {qi(self.snap_db(snapshot))}")

    # --- ready copies, reset, undo -----------------------------------------------------------------
    def make_ready(self, env: str, snapshot: str, snapshot_id: str) -> None:
        """Make ``db@ready`` from the snapshot (run in the background), and drop the copies
        earlier resets replaced."""
        with self.server(env) as srv:
            self._set_state(env, ready=None)
            for d in srv.databases():
                if d.startswith(self.dbname(TRASH)):
                    srv.terminate(d)
                    srv.psql(f"DROP DATABASE IF EXISTS {qi(d)}")
            self._copy_db(srv, self.snap_db(snapshot), self.dbname(READY))
            self._set_state(env, ready={"snapshot": snapshot, "id": snapshot_id})

    def ready_for(self, env: str) -> str | None:
        ready = self._state(env).get("ready")
        return ready.get("id") if isinstance(ready, dict) else None

    def reset(self, env: str, snapshot: str, snapshot_id: str) -> bool:
        """Swap the ready copy in with two renames in one transaction (O(1) whatever the size);
        the replaced database becomes ``db@undo``, the previous undo is dropped later."""
        with self.server(env) as srv:
            dbs = srv.databases()
            ready, undo = self.dbname(READY), self.dbname(UNDO)
            used_ready = self.ready_for(env) == snapshot_id and ready in dbs
            if not used_ready:
                self._copy_db(srv, self.snap_db(snapshot), ready)
            self._set_state(env, ready=None)
            steps = []
            if undo in dbs:
                steps.append(f"ALTER DATABASE {qi(undo)} RENAME TO {qi(self.dbname(TRASH + uuid.uuid4().hex[:8]))};")
            steps += [f"ALTER DATABASE {qi(self.db)} RENAME TO {qi(undo)};",
                      f"ALTER DATABASE {qi(ready)} RENAME TO {qi(self.db)};"]
            self._swap(srv, [self.db, undo], "BEGIN; " + " ".join(steps) + " COMMIT;")
            self._set_state(env, undo=True)
            self.last_swap_seconds = getattr(self, "_swap_seconds", None)
        return used_ready

    def _swap(self, srv: PgServer, dbs: list[str], sql: str) -> None:
        t0 = time.perf_counter()
        for attempt in range(50):
            srv.terminate(*dbs)
            try:
                srv.psql(sql)
                break
            except BackendError as exc:
                if "being accessed by other users" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.02)
        self._swap_seconds = time.perf_counter() - t0

    def undo_reset(self, env: str) -> None:
        undo, swap = self.dbname(UNDO), self.dbname(SWAP)
        with self.server(env) as srv:
            if undo not in srv.databases():
                raise Refused(f"{env} has no reset of {self.name} to undo.")
            self._swap(srv, [self.db, undo], f"BEGIN; ALTER DATABASE {qi(self.db)} RENAME TO {qi(swap)}; "
                                             f"ALTER DATABASE {qi(undo)} RENAME TO {qi(self.db)}; "
                                             f"ALTER DATABASE {qi(swap)} RENAME TO {qi(undo)}; COMMIT;")

    def has_undo(self, env: str) -> bool:
        return bool(self._state(env).get("undo"))

    def recover(self, env: str) -> bool:
        """The renames of a reset are one transaction: there is never half a swap to finish."""
        return False

    def destroy(self, env: str) -> None:
        """The clone's volumes (and so its databases) are removed by the backend."""
        self._state_file(env).unlink(missing_ok=True)

    def size(self, env: str, snapshot: str | None = None) -> int:
        c = self.backend.engine.container(self.backend.container_name(env, self.service))
        if c is None or c.status != "running":
            return 0
        srv = PgServer(self.backend.engine, c, self.user, self._password(env))
        name = self.snap_db(snapshot) if snapshot else self.db
        try:
            return int(srv.value(f"SELECT pg_database_size({ql(name)}) AS s") or 0)
        except BackendError:
            return 0

    def fingerprint(self, location: str) -> str:
        """The server's WAL position and the database's commit count: they move when data changes."""
        env = self._env_of(location)
        try:
            srv = self.prod_server() if env == "prod" else self._running(env)
            if srv is None:
                return "stopped"
            db = location.rsplit("/", 1)[-1]
            row = srv.query(f"SELECT pg_current_wal_lsn()::text AS l, xact_commit AS c FROM pg_stat_database "
                            f"WHERE datname = {ql(db)}")
            return json.dumps(row)
        except (BackendError, Refused, NotFound):
            return ""

    def _env_of(self, location: str) -> str:
        host = location.split("@", 1)[-1].split("/", 1)[0]
        prefix = self.backend.engine.prefix + "-"
        if host.startswith(prefix) and host.endswith("-" + self.service):
            return host[len(prefix):-len(self.service) - 1]
        return "prod"

    def _running(self, env: str) -> PgServer | None:
        c = self.backend.engine.container(self.backend.container_name(env, self.service))
        if c is None or c.status != "running":
            return None
        return PgServer(self.backend.engine, c, self.user, self._password(env))

    def endpoint(self, env: str, snapshot: str | None = None) -> tuple[PgServer, str]:
        """(server, database) of an environment or one of its snapshots, for the data diff.
        The clone's server must run (a diff never starts containers)."""
        if env == "prod":
            return self.prod_server(), self.db
        srv = self._running(env)
        if srv is None:
            raise Refused(f"{env}'s {self.service} is not running: its data cannot be compared.",
                          f"Start it: repro-tui start {env}")
        return srv, self.snap_db(snapshot) if snapshot else self.db


def _file_copy(srv: PgServer) -> str:
    """``STRATEGY = FILE_COPY`` where the server has it (PostgreSQL 15): a template is copied
    file by file after one checkpoint, at the speed of a copy, instead of being written
    through the WAL page by page (15's default, several times slower for a large database).
    Older servers copy files anyway."""
    return " STRATEGY = FILE_COPY" if srv.version() >= 150000 else ""


def _name_eq(actual: str, wanted: str) -> bool:
    return actual == wanted or actual == wanted.lower() or actual.lower() == wanted.lower()


def _nearest(name: str, candidates: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5) or difflib.get_close_matches(
        name.lower(), [c.lower() for c in candidates], n=1, cutoff=0.5)
    if close:
        return f"Did you mean {close[0]!r}?"
    return f"Names there: {', '.join(candidates[:12])}" + (" ..." if len(candidates) > 12 else "")


__all__ = ["PostgresStore", "PgServer", "qi", "ql", "re"]
