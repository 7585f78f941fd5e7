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

Every statement goes through ``docker exec psql`` in the server's container, as the
``postgres`` system user (Debian's PostgreSQL authenticates local connections by peer),
so a remote engine works the same and no password is needed or printed.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shlex
import struct
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import BackendError, InvalidInput, NotFound, Refused
from workbench.names import FORKED
from workbench.scrub import name_part, scrub_value, workspace_key
from workbench.spec import ScrubRule, Spec, StoreSpec
from workbench.stores.base import Progress, Store

if TYPE_CHECKING:
    from workbench.backends.docker import DockerBackend

PATH_PRELUDE = 'for d in /usr/lib/postgresql/*/bin; do PATH="$d:$PATH"; done; export PATH; '
SNAP_PREFIX = "snap-"
NOT_OWNER = 3          # exit code of a private server whose data files another uid owns
READY = "ready"
UNDO = "undo"
SWAP = "swap"
TRASH = "trash-"
MAX_IDENT = 63


def qi(name: str) -> str:
    """A quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def ql(value: Any) -> str:
    """A SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


# how a container's psql is reached: (container id, user) -> (psql arguments, system user)
_CONNECT: dict[tuple[str, str], tuple[list[str], str]] = {}
# connection losses after which a statement was not run, so it may be sent again
_LOST = ("terminating connection due to administrator command", "server closed the connection unexpectedly",
         "connection to server was lost", "no connection to the server")


class PsqlSession:
    """One ``psql`` kept running in the server's container, its stdin attached through the
    Engine API: a statement then costs a round trip (well under a millisecond) instead of
    a ``docker exec`` (80 ms here). Each statement is followed by ``\\echo MARK``; psql
    runs with ON_ERROR_STOP, so a failed statement ends the session (and an open
    transaction with it), and the next statement starts a new one."""

    def __init__(self, engine: Any, container: Any, argv: list[str], user: str, env: dict[str, str] | None,
                 what: str) -> None:
        from workbench.backends.docker_engine import API_TIMEOUT, engine_call

        self.what = what
        self.mark = f"@@repro-{uuid.uuid4().hex}@@"
        self.lock = threading.Lock()
        api = engine.api
        cid = container if isinstance(container, str) else container.id
        with engine_call(what):
            ex = api.exec_create(cid, argv, stdin=True, stdout=True, stderr=True, user=user, environment=env)
            self._sock = api.exec_start(ex["Id"], socket=True)
        self._raw = getattr(self._sock, "_sock", self._sock)   # a socket, an SSL socket or an ssh channel
        self._raw.settimeout(API_TIMEOUT)
        self.alive = True

    def close(self) -> None:
        self.alive = False
        for obj in (self._raw, self._sock):
            try:
                obj.close()
            except Exception:  # noqa: BLE001 - closing a broken transport
                pass

    def _recv_exact(self, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = self._raw.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def run(self, sql: str) -> tuple[bool, str, str]:
        """(done, stdout, stderr) of one statement (or a few, separated by ';')."""
        from workbench.backends.docker_engine import engine_call

        end = (self.mark + "\n").encode()
        out, err = b"", b""
        with self.lock, engine_call(self.what):
            try:
                self._raw.sendall(f"{sql}\n;\n\\echo {self.mark}\n".encode())
                while True:
                    header = self._recv_exact(8)
                    if header is None:
                        break
                    kind, size = struct.unpack(">BxxxL", header)
                    data = self._recv_exact(size) if size else b""
                    if data is None:
                        break
                    if kind == 2:
                        err += data
                        continue
                    out += data
                    if out.endswith(end) and (len(out) == len(end) or out[-len(end) - 1:-len(end)] == b"\n"):
                        return True, out[:-len(end)].decode("utf-8", "replace"), err.decode("utf-8", "replace")
            except BaseException:
                self.close()
                raise
        self.close()
        return False, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def __del__(self) -> None:
        self.close()


class PgServer:
    """A running PostgreSQL server in a container, reached through ``psql`` in it (a
    session kept open per database, or one ``docker exec`` per statement)."""

    def __init__(self, backend: DockerBackend, container: Any, user: str, password: str | None = None) -> None:
        self.backend = backend
        self.engine = backend.engine
        self.container = container
        self.user = user
        self.password = password
        self._args: list[str] | None = None
        self._os_user = "postgres"
        self._sessions: dict[str, PsqlSession] = {}
        self._lock = threading.Lock()
        self.use_sessions = True

    @property
    def name(self) -> str:
        return self.container.name

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()

    def _env(self) -> dict[str, str] | None:
        return {"PGPASSWORD": self.password} if self.password else None

    def _exec(self, args: list[str], os_user: str) -> tuple[int, str, str]:
        code, out, err = self.engine.exec(self.container, ["sh", "-c", PATH_PRELUDE + 'exec "$@"', "sh", *args],
                                          user=os_user, environment=self._env(),
                                          what=f"a query in {self.container.name}")
        return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def _connect_args(self) -> list[str]:
        """-U USER when it can log in locally, else the postgres role of the system user."""
        if self._args is not None:
            return self._args
        known = _CONNECT.get((self.container.id, self.user))
        if known is not None:
            self._args, self._os_user = known
            return self._args
        tried = []
        for os_user, args in (("postgres", ["-U", self.user]), ("postgres", []), ("", ["-U", self.user])):
            code, _out, err = self._exec(["psql", "-X", "-A", "-t", *args, "-d", "postgres", "-c", "SELECT 1"],
                                         os_user)
            if code == 0:
                self._args, self._os_user = args, os_user
                _CONNECT[(self.container.id, self.user)] = (args, os_user)
                return args
            tried.append(err.strip().splitlines()[-1] if err.strip() else f"exit {code}")
        raise BackendError(f"cannot run psql in {self.container.name}: {tried[0]}",
                           "The store's user must be able to connect through the local socket "
                           "(pg_hba.conf: local ... trust or peer for the postgres user).")

    def _session(self, db: str) -> PsqlSession:
        with self._lock:
            session = self._sessions.get(db)
            if session is not None and session.alive:
                return session
        args = self._connect_args()
        argv = ["sh", "-c", PATH_PRELUDE + 'exec "$@"', "sh", "psql", "-X", "-q", "-A", "-t",
                "-v", "ON_ERROR_STOP=1", *args, "-d", db]
        session = PsqlSession(self.engine, self.container, argv, self._os_user, self._env(),
                              f"a query in {self.container.name}")
        with self._lock:
            self._sessions[db] = session
        return session

    def psql(self, sql: str, db: str = "postgres", check: bool = True) -> str:
        if not self.use_sessions:
            return self._psql_exec(sql, db, check)
        for attempt in (1, 2):
            done, out, err = self._session(db).run(sql)
            if done:
                return out
            if attempt == 1 and any(text in err for text in _LOST) and "ERROR:" not in err:
                continue   # our connection had been ended (by a reset of the clone): not run, so run it again
            break
        if check:
            raise BackendError(f"PostgreSQL in {self.container.name} refused a statement: {_last_error(err)}")
        return out

    def _psql_exec(self, sql: str, db: str, check: bool) -> str:
        args = self._connect_args()
        code, out, err = self._exec(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", *args, "-d", db,
                                     "-c", sql], self._os_user)
        if code != 0 and check:
            raise BackendError(f"PostgreSQL in {self.container.name} refused a statement: "
                               f"{_last_error(err)}")
        return out

    def query(self, sql: str, db: str = "postgres") -> list[dict[str, Any]]:
        """Rows of a query as dicts (through json_agg: any value survives the trip)."""
        out = self.psql(f"SELECT coalesce(json_agg(q), '[]'::json) FROM ({sql}) q", db).strip()
        return json.loads(out or "[]")

    def value(self, sql: str, db: str = "postgres") -> Any:
        rows = self.query(sql, db)
        return next(iter(rows[0].values())) if rows else None

    def run_script(self, sql: str, db: str) -> None:
        """Run a long script (too long for one argument) from a file put in the container."""
        name = f"repro-{uuid.uuid4().hex[:8]}.sql"
        data = sql.encode()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        self.engine.put_archive(self.container, "/tmp", buf.getvalue(), "putting a script in the scrub server")
        args = self._connect_args()
        code, _out, err = self._exec(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", *args, "-d", db, "-f",
                                      f"/tmp/{name}"], self._os_user)
        self._exec(["rm", "-f", f"/tmp/{name}"], "")
        if code != 0:
            raise BackendError(f"PostgreSQL in {self.container.name} refused the scrub: {_last_error(err)}")

    def databases(self) -> set[str]:
        return {r["datname"] for r in self.query("SELECT datname FROM pg_database")}

    def terminate(self, *dbs: str) -> None:
        """End every other connection to these databases. Only ever called on a clone's server."""
        self.backend.engine  # noqa: B018 - the caller has checked this is a clone's container
        names = ", ".join(ql(d) for d in dbs)
        self.psql(f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                  f"WHERE datname IN ({names}) AND pid <> pg_backend_pid()")


def _last_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if "ERROR" in line or "FATAL" in line:
            return line.strip()
    return lines[-1].strip() if lines else "no message"


class PostgresStore(Store):
    """One PostgreSQL database of a docker service, for every environment."""

    def __init__(self, spec: Spec, store: StoreSpec, repro_dir: Path, backend: Any) -> None:
        super().__init__(spec, store, repro_dir)
        if backend is None or getattr(backend, "name", "") != "docker":
            raise InvalidInput(f"store '{store.name}': postgres stores need 'backend: docker'.")
        self.backend: DockerBackend = backend
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
            st, _m = self.backend.pg_data(env, self.service)
        except (NotFound, BackendError):
            return None
        return st.env.get("POSTGRES_PASSWORD") or st.env.get("PGPASSWORD")

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
        return PgServer(self.backend, c, self.user, self._password("prod"))

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
            srv = PgServer(self.backend, c, self.user, self._password(env))
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
            srv = PgServer(self.backend, c, self.user, self._password(env))
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
        st, mount = self.backend.pg_data(env, self.service)
        vol = self.backend.volume_name(env, self.service, mount.target)
        for attempt in (1, 2):
            c = self._private_container(env, st.image, st.pgdata(), vol, mount.target, fresh_copy, reset_wal)
            try:
                srv = PgServer(self.backend, c, self.user, self._password(env))
                try:
                    self._wait_ready(srv)
                except BackendError:
                    c.reload()
                    if attempt == 1 and (c.attrs.get("State") or {}).get("ExitCode") == NOT_OWNER:
                        self._fix_owner(env, st.image, vol, mount.target, st.pgdata())
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
        from workbench.backends.docker_engine import engine_call

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
        from workbench.backends.docker_engine import engine_call

        with engine_call("stopping the private server"):
            c.kill(signal="SIGINT")
            result = c.wait(timeout=300)
        if result.get("StatusCode", 1) != 0:
            raise BackendError(f"the private server of {env}'s {self.name} did not stop cleanly:\n"
                               + c.logs(tail=5).decode("utf-8", "replace"))

    def _wait_ready(self, srv: PgServer, timeout: float = 60) -> None:
        from workbench.backends.docker_engine import wait_until

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
        st, mount = self.backend.pg_data(dest, self.service)
        vol = self.backend.volume_name(dest, self.service, mount.target)
        rel = os.path.relpath(st.pgdata(), mount.target) if st.pgdata() != mount.target else ""
        restore_from: PgServer | None = None
        if source is None:
            src = self.prod_server()
            say(f"copying {self.name} online (pg_basebackup)")
            if not self._base_backup(src, dest, st.image, vol, rel, mount.target):
                say(f"pg_basebackup failed ({getattr(self, '_base_backup_error', 'no detail')}): copying "
                    f"{self.name} by pg_dump | pg_restore instead")
                self._new_cluster(src, dest, st.image, vol, mount.target, st.pgdata())
                restore_from = src
        else:
            self._copy_clone(source, dest, st.image, vol, rel, mount.target, say)
        # one private server for all that follows: the copy made fit to run, restored, scrubbed,
        # its 'forked' snapshot taken; after its clean stop, new WAL when it held original values
        with self.private_server(dest, fresh_copy=True, reset_wal=source is None and bool(rules)) as srv:
            if restore_from is not None:
                self._dump_restore(restore_from, srv, say)
            if source is None:
                if rules:
                    say(f"scrubbing {self.name}")
                    self.scrub(srv, rules)
            else:
                self._keep_only(srv, source_snapshot)
            self._copy_db(srv, self.db, self.snap_db(FORKED))
        self._set_state(dest, ready=None, undo=False, snapshot_made=FORKED)

    def _base_backup(self, src: PgServer, dest: str, image: str, vol: str, rel: str, target: str) -> bool:
        engine = self.backend.engine
        path = f"/vol/{rel}".rstrip("/")
        engine.helper(dest, image, f"set -e; mkdir -p {path}; find {path} -mindepth 1 -maxdepth 1 -exec rm -rf {{}} +; "
                      f"chown postgres:postgres {path} 2>/dev/null || true; chmod 700 {path}",
                      {vol: {"bind": "/vol", "mode": "rw"}}, "preparing the volume", self.service)
        from workbench.backends.docker_engine import engine_call

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
            self._base_backup_error = _last_error(err.decode("utf-8", "replace"))
            return False
        return True   # the private server that runs on it next removes prod's pid and log files

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
            say(f"prod's roles could not be read ({_last_error(err)}): {self.name} restored without them")
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
                               f"{_last_error(dump_err.decode('utf-8', 'replace'))}",
                               "prod was only read; the clone was not made.")
        if code != 0:
            raise BackendError(f"pg_restore of {self.name} into the clone failed: "
                               f"{_last_error(out.decode('utf-8', 'replace'))}",
                               "prod was only read; the clone was not made.")

    def _copy_clone(self, source: str, dest: str, image: str, vol: str, rel: str, target: str, say: Progress) -> None:
        c = self.backend.engine.container(self.backend.container_name(source, self.service))
        if c is not None and c.status == "running":
            say(f"copying {source}'s {self.name} online")
            srv = PgServer(self.backend, c, self.user, self._password(source))
            if self._base_backup(srv, dest, image, vol, rel, target):
                return
        _st, mount = self.backend.pg_data(source, self.service)
        src_vol = self.backend.volume_name(source, self.service, mount.target)
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
                    srv.psql(f"CREATE DATABASE {qi(new)} TEMPLATE {qi(template)}")
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
        srv = PgServer(self.backend, c, self.user, self._password(env))
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
        return PgServer(self.backend, c, self.user, self._password(env))

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
