"""PostgreSQL as repro-tui reaches it: a server in a container, spoken to through ``psql``
run inside it (a session kept open per database, or one ``docker exec`` per statement),
and the quoting every statement needs. The PostgreSQL store, the Docker backend and the
data differ all use this module; it knows nothing of any of them.

Every statement goes through the Engine API, so a remote engine works the same and no
password is needed or printed (Debian's PostgreSQL authenticates local connections by peer).
"""

from __future__ import annotations

import io
import json
import struct
import tarfile
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from workbench.docker_engine import API_TIMEOUT, Engine, engine_call
from workbench.errors import BackendError


@dataclass
class PgPlace:
    """Where one environment's PostgreSQL service keeps its data: the image it runs, its
    data directory, the mount that holds it and the volume behind that mount."""

    image: str
    pgdata: str
    target: str                                     # the mount point holding pgdata
    volume: str                                     # the environment's volume at that mount
    env: dict[str, str] = field(default_factory=dict)   # the container's environment (its password)


class PgHost(Protocol):
    """What the PostgreSQL store asks of the place its servers run (the Docker backend)."""

    engine: Engine
    workspace_id: str

    def container_name(self, env: str, service: str) -> str: ...

    def prod_container(self, service: str) -> Any: ...

    def pg_place(self, env: str, service: str) -> PgPlace: ...

    def engine_start(self, c: Any) -> None: ...

    def stop_container(self, c: Any) -> None: ...


PATH_PRELUDE = 'for d in /usr/lib/postgresql/*/bin; do PATH="$d:$PATH"; done; export PATH; '


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

    def __init__(self, engine: Engine, container: Any, user: str, password: str | None = None) -> None:
        self.engine = engine
        self.container = container
        self.user = user
        self.password = password
        self._args: list[str] | None = None
        self._os_user = "postgres"
        self._sessions: dict[str, PsqlSession] = {}
        self._version: int | None = None
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
            raise BackendError(f"PostgreSQL in {self.container.name} refused a statement: {last_error(err)}")
        return out

    def _psql_exec(self, sql: str, db: str, check: bool) -> str:
        args = self._connect_args()
        code, out, err = self._exec(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", *args, "-d", db,
                                     "-c", sql], self._os_user)
        if code != 0 and check:
            raise BackendError(f"PostgreSQL in {self.container.name} refused a statement: "
                               f"{last_error(err)}")
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
            raise BackendError(f"PostgreSQL in {self.container.name} refused the scrub: {last_error(err)}")

    def version(self) -> int:
        """The server's version number (150004 for 15.4), asked once."""
        if self._version is None:
            self._version = int(self.value("SELECT current_setting('server_version_num')::int AS v") or 0)
        return self._version

    def databases(self) -> set[str]:
        return {r["datname"] for r in self.query("SELECT datname FROM pg_database")}

    def terminate(self, *dbs: str) -> None:
        """End every other connection to these databases. Only ever called on a clone's server."""
        names = ", ".join(ql(d) for d in dbs)
        self.psql(f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                  f"WHERE datname IN ({names}) AND pid <> pg_backend_pid()")


def last_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if "ERROR" in line or "FATAL" in line:
            return line.strip()
    return lines[-1].strip() if lines else "no message"
