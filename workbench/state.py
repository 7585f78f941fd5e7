"""The workspace's state: environments, snapshots and the journal, in ``.repro/state.db``.

WAL mode, so that readers never wait for the writer.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from workbench.errors import Refused
from workbench.model import JournalEntry, SnapshotInfo

SCHEMA = """
CREATE TABLE IF NOT EXISTS envs (
    name TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    source TEXT,
    forked_commit TEXT,
    branch TEXT NOT NULL,
    ports TEXT NOT NULL DEFAULT '{}',
    last_reset TEXT,
    status TEXT NOT NULL DEFAULT 'ok'
);
CREATE TABLE IF NOT EXISTS snapshots (
    id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    seq INTEGER NOT NULL,
    commit_sha TEXT,
    tree_commit TEXT,
    dirty INTEGER NOT NULL DEFAULT 0,
    UNIQUE (env, name)
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL,
    env TEXT,
    args TEXT NOT NULL DEFAULT '{}',
    started_at REAL NOT NULL,
    finished_at REAL,
    outcome TEXT NOT NULL,
    message TEXT,
    user TEXT NOT NULL,
    host TEXT NOT NULL,
    steps TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""
# What each check said of an environment, kept for the screen, the promote trailers and
# the post-mortem. ``outcome``: pass | fail | error (could not run) | skipped (clones only).
CHECKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS check_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    env TEXT NOT NULL,
    name TEXT NOT NULL,
    at REAL NOT NULL,
    outcome TEXT NOT NULL,
    request TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'http',
    status INTEGER,
    latency_ms REAL,
    reason TEXT NOT NULL DEFAULT '',
    failure TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL DEFAULT '',
    runs TEXT NOT NULL DEFAULT '[]',
    trigger TEXT,
    journal_id INTEGER
);
CREATE INDEX IF NOT EXISTS check_results_by_env ON check_results (env, name, id);
"""


def current_user() -> tuple[str, str]:
    """(user, host) of this process, as the journal records them."""
    return _who()


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY) or not os.access(folder, os.W_OK)
    except OSError:
        return False


def _who() -> tuple[str, str]:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return user, os.uname().nodename   # gethostname's answer, without importing socket


class State:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        try:
            self.db.execute("PRAGMA busy_timeout=30000")
            if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            self.db.executescript(CHECKS_SCHEMA)
            self._add_owners()
        except sqlite3.OperationalError:
            self.db.close()
            if _read_only(path.parent):
                raise Refused(f"the workspace's state ({path}) is on a read-only disk or in a folder you may not "
                              "write: nothing can be changed, nor read safely.",
                              f"Check the mount and the permissions of {path.parent} (ls -ld {path.parent}).") from None
            # WAL needs a few KB for its shared memory even to read: a full disk fails with a mere "disk I/O error"
            if shutil.disk_usage(path.parent).free < 1024 * 1024:
                raise Refused(f"no space left on the disk that holds {path.parent}: the workspace's state "
                              "cannot be opened.", "Free some space on that disk (df -h shows it), then try "
                              "again.") from None
            raise

    def close(self) -> None:
        self.db.close()

    def _add_owners(self) -> None:
        """Workspaces made before clones had owners: the column, filled from the journal (who
        forked each clone), and an index for the questions asked of one clone's history."""
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(envs)")}
        if "owner" not in columns:
            try:
                self.db.execute("ALTER TABLE envs ADD COLUMN owner TEXT")
            except sqlite3.OperationalError as exc:   # another process added it meanwhile
                if "duplicate column" not in str(exc):
                    raise
            self.db.execute("UPDATE envs SET owner = (SELECT user FROM journal WHERE journal.op = 'fork' "
                            "AND journal.env = envs.name ORDER BY id DESC LIMIT 1) WHERE owner IS NULL")
        self.db.execute("CREATE INDEX IF NOT EXISTS journal_env ON journal (env, id)")

    # meta
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # environments
    def envs(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM envs ORDER BY created_at").fetchall()

    def env(self, name: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM envs WHERE name=?", (name,)).fetchone()

    def add_env(self, name: str, *, source: str, forked_commit: str | None, branch: str,
                ports: dict[str, int], status: str) -> None:
        self.db.execute("INSERT INTO envs (name, created_at, source, forked_commit, branch, ports, status) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (name, time.time(), source, forked_commit, branch, json.dumps(ports), status))

    def update_env(self, name: str, **fields: Any) -> None:
        if "ports" in fields:
            fields["ports"] = json.dumps(fields["ports"])
        cols = ", ".join(f"{k}=?" for k in fields)
        self.db.execute(f"UPDATE envs SET {cols} WHERE name=?", (*fields.values(), name))

    def remove_env(self, name: str) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM snapshots WHERE env=?", (name,))
            self.db.execute("DELETE FROM envs WHERE name=?", (name,))

    def used_ports(self) -> set[int]:
        out: set[int] = set()
        for row in self.db.execute("SELECT ports FROM envs"):
            out.update(json.loads(row[0]).values())
        return out

    # snapshots
    def snapshots(self, env: str) -> list[SnapshotInfo]:
        rows = self.db.execute("SELECT * FROM snapshots WHERE env=? ORDER BY seq", (env,)).fetchall()
        return [self._snap(r) for r in rows]

    def snapshot(self, env: str, name: str) -> SnapshotInfo | None:
        row = self.db.execute("SELECT * FROM snapshots WHERE env=? AND name=?", (env, name)).fetchone()
        return self._snap(row) if row else None

    def snapshot_tree(self, env: str, name: str) -> str | None:
        row = self.db.execute("SELECT tree_commit FROM snapshots WHERE env=? AND name=?", (env, name)).fetchone()
        return row[0] if row else None

    def add_snapshot(self, env: str, name: str, sid: str, commit: str | None, tree_commit: str | None,
                     dirty: bool) -> None:
        seq = self.db.execute("SELECT coalesce(max(seq), 0) + 1 FROM snapshots WHERE env=?", (env,)).fetchone()[0]
        self.db.execute("INSERT INTO snapshots (id, env, name, created_at, seq, commit_sha, tree_commit, dirty) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (sid, env, name, time.time(), seq, commit, tree_commit, int(dirty)))

    def remove_snapshot(self, env: str, name: str) -> None:
        self.db.execute("DELETE FROM snapshots WHERE env=? AND name=?", (env, name))

    @staticmethod
    def _snap(r: sqlite3.Row) -> SnapshotInfo:
        return SnapshotInfo(env=r["env"], name=r["name"], id=r["id"], created_at=r["created_at"],
                            commit=r["commit_sha"], dirty=bool(r["dirty"]))

    # journal
    def begin(self, op: str, env: str | None, args: dict[str, Any]) -> int:
        user, host = _who()
        cur = self.db.execute(
            "INSERT INTO journal (op, env, args, started_at, outcome, user, host) VALUES (?, ?, ?, ?, 'running', ?, ?)",
            (op, env, json.dumps(args), time.time(), user, host))
        return int(cur.lastrowid or 0)

    def update_args(self, jid: int, args: dict[str, Any]) -> None:
        self.db.execute("UPDATE journal SET args=? WHERE id=?", (json.dumps(args), jid))

    def add_step(self, jid: int, step: str, seconds: float) -> None:
        row = self.db.execute("SELECT steps FROM journal WHERE id=?", (jid,)).fetchone()
        steps = json.loads(row[0]) if row else []
        steps.append({"step": step, "seconds": round(seconds, 4)})
        self.db.execute("UPDATE journal SET steps=? WHERE id=?", (json.dumps(steps), jid))

    def finish(self, jid: int, outcome: str, message: str | None = None) -> None:
        self.db.execute("UPDATE journal SET outcome=?, message=?, finished_at=? WHERE id=?",
                        (outcome, message, time.time(), jid))

    def pending(self) -> list[JournalEntry]:
        rows = self.db.execute("SELECT * FROM journal WHERE outcome='running' ORDER BY id").fetchall()
        return [self._entry(r) for r in rows]

    def journal(self, env: str | None = None, limit: int = 50) -> list[JournalEntry]:
        if env:
            rows = self.db.execute("SELECT * FROM journal WHERE env=? ORDER BY id DESC LIMIT ?", (env, limit))
        else:
            rows = self.db.execute("SELECT * FROM journal ORDER BY id DESC LIMIT ?", (limit,))
        return [self._entry(r) for r in rows.fetchall()]

    def last_of(self, env: str, ops: tuple[str, ...], outcomes: tuple[str, ...]) -> JournalEntry | None:
        """The newest journal entry of ``env`` among ``ops`` whose outcome is one of ``outcomes``."""
        marks = ", ".join("?" * len(ops)), ", ".join("?" * len(outcomes))
        row = self.db.execute(f"SELECT * FROM journal WHERE env=? AND op IN ({marks[0]}) AND outcome IN ({marks[1]}) "
                              "ORDER BY id DESC LIMIT 1", (env, *ops, *outcomes)).fetchone()
        return self._entry(row) if row else None

    @staticmethod
    def _entry(r: sqlite3.Row) -> JournalEntry:
        return JournalEntry(id=r["id"], op=r["op"], env=r["env"], args=json.loads(r["args"]),
                            started_at=r["started_at"], finished_at=r["finished_at"], outcome=r["outcome"],
                            message=r["message"], user=r["user"], host=r["host"], steps=json.loads(r["steps"]))

    # check results
    def add_check_result(self, row: dict[str, Any]) -> None:
        """One check's result on one environment (the keys of ``check_results``; text masked)."""
        row = {**row, "runs": json.dumps(row.get("runs") or [])}
        cols = ", ".join(row)
        self.db.execute(f"INSERT INTO check_results ({cols}) VALUES ({', '.join('?' for _ in row)})",
                        tuple(row.values()))

    def check_results(self, env: str | None = None, since: float | None = None) -> list[dict[str, Any]]:
        """Every result, oldest first (of one environment, since a time)."""
        sql = "SELECT * FROM check_results WHERE at >= ?"
        args: list[Any] = [since or 0.0]
        if env is not None:
            sql += " AND env = ?"
            args.append(env)
        return [self._check_row(r) for r in self.db.execute(sql + " ORDER BY id", args).fetchall()]

    def latest_check_results(self) -> list[dict[str, Any]]:
        """The last result of each check on each environment."""
        rows = self.db.execute("SELECT * FROM check_results WHERE id IN (SELECT max(id) FROM check_results "
                               "GROUP BY env, name) ORDER BY env, name").fetchall()
        return [self._check_row(r) for r in rows]

    @staticmethod
    def _check_row(r: sqlite3.Row) -> dict[str, Any]:
        out = dict(r)
        out["runs"] = json.loads(out["runs"])
        return out
