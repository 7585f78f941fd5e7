"""The workspace: the one way in for the CLI and the screen.

Every operation that changes something is a journaled transaction under the writer
lock: its intent is written before the first step, and an operation cut off half way
is rolled back (or finished) by the next writer that opens the workspace.
"""

from __future__ import annotations

import json
import os
import secrets as _secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workbench.backends import make_backend
from workbench.backends.base import Backend, EnvContext
from workbench.errors import InvalidInput, NotFound, ProdReadOnly, Refused, ReproError
from workbench.lock import WriterLock
from workbench.model import EnvInfo, JournalEntry, PromoteResult, Side, SnapshotInfo
from workbench.names import FORKED, PROD, check_env_name, check_snapshot_name
from workbench.secrets import SecretPolicy, secret_values
from workbench.spec import SPEC_FILE, Spec, load_spec
from workbench.state import State
from workbench.stores import make_store
from workbench.stores.base import Store, is_disk_full

Progress = Callable[[str], None]
REPRO_DIR = ".repro"
BRANCH_PREFIX = "repro/"


def find_root(start: Path | None = None) -> Path:
    """The workspace root: upward from ``start`` like git, and from inside a clone's
    worktree (``.repro/envs/NAME``) the main workspace that owns it."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if folder.name == "envs" and folder.parent.name == REPRO_DIR:
            return folder.parent.parent
        if (folder / SPEC_FILE).is_file() and (folder / ".git").exists():
            git_file = folder / ".git"
            if git_file.is_file():  # a linked worktree: the main one owns the workspace
                common = _common_dir_of(git_file)
                if common and (common.parent / SPEC_FILE).is_file():
                    return common.parent
            return folder
    where = start or Path.cwd()
    raise Refused(f"no workspace here: no repro.yaml in {where} or above it.",
                  "Run from a workspace, pass -w PATH, or try the demo: repro-tui demo")


def _common_dir_of(git_file: Path) -> Path | None:
    try:
        gitdir = Path(git_file.read_text().split("gitdir:", 1)[1].strip())
        common = gitdir / "commondir"
        return (gitdir / common.read_text().strip()).resolve() if common.exists() else gitdir.parent.parent
    except (OSError, IndexError):
        return None


def _git_dir(root: Path) -> Path:
    dot = root / ".git"
    if dot.is_file():
        return _common_dir_of(dot) or dot
    return dot


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``b1`` -> ("b1", None); ``b1@s2`` -> ("b1", "s2")."""
    env, _, snap = ref.partition("@")
    check_env_name(env)
    if snap:
        check_snapshot_name(snap)
    elif ref.endswith("@"):
        raise InvalidInput(f"{ref!r}: a snapshot name is missing after '@'.", "Write CLONE@SNAPSHOT, e.g. b1@forked.")
    return env, snap or None


ROLLBACK_FAILED = "failed (could not roll back: "  # an error, not an outcome: tried again


class Operation:
    """One journaled operation in progress: timed steps and its arguments (for recovery)."""

    def __init__(self, ws: Workspace, jid: int, args: dict[str, Any], progress: Progress | None) -> None:
        self.ws, self.jid, self.args, self._progress = ws, jid, args, progress
        self.message: str | None = None

    def note(self, **args: Any) -> None:
        """Record facts that recovery needs (written before the step they describe)."""
        self.args.update(args)
        self.ws.state.update_args(self.jid, self.args)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        if self._progress:
            self._progress(name)
        t0 = time.perf_counter()
        yield
        self.ws.state.add_step(self.jid, name, time.perf_counter() - t0)
        self.ws._fault(name)

    def progress(self, text: str) -> None:
        if self._progress:
            self._progress(text)


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.spec: Spec = load_spec(self.root)
        self._spec_bytes = _read_bytes(self.root / SPEC_FILE)
        self._clone_specs: dict[str, tuple[bytes, dict]] = {}  # env -> (its repro.yaml, its services)
        self.repro_dir = self.root / REPRO_DIR
        self.repro_dir.mkdir(exist_ok=True)
        self._exclude_repro()
        self.state = State(self.repro_dir / "state.db")
        self._lock = WriterLock(self.repro_dir / "lock")
        self.id = self._workspace_id()
        self.secrets = SecretPolicy(self.spec.secrets, self.spec.not_secrets, key=self._secret_key())
        self._backend: Backend | None = None
        self._stores: dict[str, Store] | None = None
        self.clock: Callable[[], float] = time.time

    @classmethod
    def open(cls, path: Path | str | None = None) -> Workspace:
        return cls(find_root(Path(path) if path else None))

    def close(self) -> None:
        self.state.close()

    # set-up -------------------------------------------------------------------------
    def _exclude_repro(self) -> None:
        info = _git_dir(self.root) / "info"
        if not info.parent.exists():
            return
        exclude = info / "exclude"
        text = exclude.read_text() if exclude.exists() else ""
        if "/.repro/" not in text.splitlines():
            info.mkdir(exist_ok=True)
            exclude.write_text(text + ("\n" if text and not text.endswith("\n") else "") + "/.repro/\n")

    def _workspace_id(self) -> str:
        path = self.repro_dir / "workspace-id"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(uuid.uuid4().hex[:12])
            os.replace(tmp, path)
        return path.read_text().strip()

    def _secret_key(self) -> bytes:
        path = self.repro_dir / "secret-key"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, _secrets.token_hex(16).encode())
            os.close(fd)
            os.replace(tmp, path)
        return path.read_bytes()

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = make_backend(self.spec, self.id, self.repro_dir, self.secrets)
        return self._backend

    @property
    def stores(self) -> dict[str, Store]:
        if self._stores is None:
            self._stores = {name: make_store(self.spec, st, self.repro_dir, self._backend_for_store(st))
                            for name, st in self.spec.stores.items()}
        return self._stores

    def _backend_for_store(self, st: Any) -> Backend | None:
        return self.backend if st.type == "postgres" else None

    def _repo(self):  # imported here: git is not needed to read the workspace
        from workbench.vcs import Repo

        return Repo(self.root)

    def _fault(self, point: str) -> None:
        """Tests name a step (``REPRO_FAULT=op:step``) to be killed at, to prove recovery."""
        fault = os.environ.get("REPRO_FAULT")
        if fault and fault == f"{self._current_op}:{point}":
            sig = getattr(signal, "SIG" + os.environ.get("REPRO_FAULT_SIGNAL", "KILL"))
            os.kill(os.getpid(), sig)

    _current_op = ""

    # paths ----------------------------------------------------------------------------
    def worktree(self, env: str) -> Path:
        return self.root if env == PROD else self.repro_dir / "envs" / env

    def run_dir(self, env: str) -> Path:
        return self.repro_dir / "run" / env

    # transactions ---------------------------------------------------------------------
    @contextmanager
    def _operation(self, op: str, env: str | None, args: dict[str, Any],
                   progress: Progress | None = None, check: Callable[[], Any] | None = None) -> Iterator[Operation]:
        """``check`` runs again under the lock: what was checked before waiting for it (the
        name is free, the clone exists) may have changed meanwhile, and an operation that
        failed on that would roll back what the other writer made."""
        self._lock.acquire(op, on_wait=progress)
        try:
            self._recover()
            if check is not None:
                check()
            self._current_op = op
            jid = self.state.begin(op, env, args)
            operation = Operation(self, jid, dict(args), progress)
            try:
                yield operation
            except BaseException as exc:
                message = self._redact(str(exc) if isinstance(exc, ReproError) else f"{type(exc).__name__}: {exc}",
                                       env)
                if isinstance(exc, KeyboardInterrupt):
                    message = "interrupted"
                outcome = self._roll_back(op, operation.args)
                if not outcome.startswith(ROLLBACK_FAILED):  # else left pending: the next writer tries again
                    self.state.finish(jid, outcome, message)
                if isinstance(exc, KeyboardInterrupt):
                    from workbench.errors import Interrupted

                    raise Interrupted(f"{op} was interrupted; {outcome.replace('-', ' ')}.",
                                      "Nothing was left half made.") from None
                if is_disk_full(exc):
                    raise self._no_space(op, outcome) from None
                raise
            else:
                self.state.finish(jid, "ok", operation.message)
            finally:
                self._current_op = ""
        finally:
            self._lock.release()

    def _no_space(self, op: str, outcome: str) -> Refused:
        try:
            free = f"{shutil.disk_usage(self.repro_dir).free / 1048576:.1f} MB free"
        except OSError:
            free = "full"
        done = ("what it had made is removed by the next command once there is room" if outcome.startswith("failed")
                else f"it was {outcome.replace('-', ' ')}: nothing was left half made")
        return Refused(f"no space left on the disk that holds {self.repro_dir} ({free}): the {op} stopped and "
                       f"{done}.",
                       "Free some space on that disk (df -h shows it), or delete snapshots you no longer need "
                       "(repro-tui snapshot CLONE --delete NAME), then try again.")

    def _roll_back(self, op: str, args: dict[str, Any]) -> str:
        handler = getattr(self, f"_undo_{op.replace('-', '_')}", None)
        if handler is None:
            return "failed"
        old = None
        if threading.current_thread() is threading.main_thread():
            old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the rollback
        try:
            return handler(args)
        except Exception as exc:  # the rollback itself failed: say so, the next writer tries again
            return f"{ROLLBACK_FAILED}{exc})"
        finally:
            if old is not None:
                signal.signal(signal.SIGINT, old)

    def pending(self) -> list[JournalEntry]:
        """Operations that were cut off and wait for recovery (shown by readers)."""
        out = []
        for entry in self.state.pending():
            if entry.op == "prepare-ready" and _pid_alive(entry.args.get("pid")):
                continue
            out.append(entry)
        return out if (out and self._lock.is_free()) else []

    def _recover(self) -> None:
        for entry in self.state.pending():
            if entry.op == "prepare-ready":
                if _pid_alive(entry.args.get("pid")):
                    continue
                self._discard_partial_ready(entry.env)
                self.state.finish(entry.id, "failed", "the ready copy was cut off; it is made again on the next reset")
                continue
            outcome = self._roll_back(entry.op, entry.args)
            if outcome.startswith(ROLLBACK_FAILED):
                continue   # e.g. the Docker engine is unreachable: still pending, tried again by the next writer
            self._discard_partial_ready(entry.env)
            self.state.finish(entry.id, outcome, f"{entry.op} was cut off; recovered by the next command")

    def _discard_partial_ready(self, env: str | None) -> None:
        """A ready copy cut off half way (a reset copying its snapshot, or the helper) leaves a
        half-written folder: remove it, unless a ready copy is being made right now."""
        if not env or env == PROD or self.state.env(env) is None:
            return
        lock = WriterLock(self.repro_dir / "ready" / f"{env}.lock")
        if not lock.path.parent.exists():
            return
        try:
            lock.acquire("discard a cut-off ready copy", timeout=0)
        except Refused:
            return
        try:
            for store in self.stores.values():
                store.discard_partial_ready(env)
        finally:
            lock.release()

    def try_recover(self) -> list[JournalEntry]:
        """Recover what was cut off if nobody is changing the workspace right now;
        never waits (readers call it, and readers never wait)."""
        if not self.state.pending():
            return []
        try:
            self._lock.acquire("recover", timeout=0)
        except Refused:
            return []
        try:
            before = [e for e in self.state.pending()
                      if not (e.op == "prepare-ready" and _pid_alive(e.args.get("pid")))]
            self._recover()
            return before
        finally:
            self._lock.release()

    def recover(self) -> list[JournalEntry]:
        """Take the lock just to recover whatever was cut off; returns what was recovered."""
        before = self.pending()
        self._lock.acquire("recover")
        try:
            self._recover()
        finally:
            self._lock.release()
        return before

    def _redact(self, text: str, env: str | None = None) -> str:
        """Mask every known secret value in ``text``: the workspace's, and those of the clone
        ``env``'s own repro.yaml (a changed secret is declared only there)."""
        return self.secrets.redact_text(text, self._secret_values(env))

    def _secret_values(self, env: str | None) -> list[str]:
        values: list[str] = []
        services = list(self.spec.services.values())
        if env and env != PROD and self.worktree(env).exists():
            try:
                services += self._clone_services(env).values()
            except ReproError:
                pass
        for svc in services:
            values += secret_values({**svc.env, **self.spec.override_env}, self.secrets)
        for st in self.spec.stores.values():
            if st.password:
                values.append(st.password)
        return values

    # environments -----------------------------------------------------------------------
    def _require_clone(self, env: str, what: str) -> Any:
        check_env_name(env)
        if env == PROD:
            raise ProdReadOnly(what)
        row = self.state.env(env)
        if row is None:
            raise NotFound(f"no environment named {env!r}.", self._names_hint())
        return row

    def _names_hint(self) -> str:
        names = [r["name"] for r in self.state.envs()]
        return f"Environments: prod{', ' if names else ''}{', '.join(names)}. See: repro-tui list"

    def context(self, env: str) -> EnvContext:
        if env == PROD:
            ports = {n: s.port for n, s in self.spec.services.items() if s.port}
            return EnvContext(name=PROD, kind="prod", worktree=self.root, run_dir=self.run_dir(PROD),
                              services=self.spec.services, ports=ports,
                              store_paths={n: s.prod_location() for n, s in self.stores.items()})
        row = self.state.env(env)
        if row is None:
            raise NotFound(f"no environment named {env!r}.", self._names_hint())
        return EnvContext(name=env, kind="clone", worktree=self.worktree(env), run_dir=self.run_dir(env),
                          services=self._clone_services(env), ports=json.loads(row["ports"]),
                          store_paths={n: s.location(env) for n, s in self.stores.items()},
                          env_overrides=self.spec.override_env, service_overrides=self.spec.override_services)

    def _clone_services(self, env: str) -> dict:
        """A clone's services come from the repro.yaml in its worktree (so a fix to a
        service setting can be tried and promoted); backend and stores from the root's."""
        path = self.worktree(env) / SPEC_FILE
        if not path.exists():
            return self.spec.services
        raw = _read_bytes(path)
        # parsing YAML costs ~5 ms: a clone whose repro.yaml is prod's (the usual case) is not
        # parsed again, nor one that has not changed since (the screen lists every second)
        if raw is not None and raw == self._spec_bytes:
            return self.spec.services
        cached = self._clone_specs.get(env)
        if raw is not None and cached and cached[0] == raw:
            return cached[1]
        try:
            services = load_spec(self.worktree(env), path).services
        except InvalidInput as exc:
            raise InvalidInput(f"the clone's {exc.message}", "Fix the repro.yaml in the clone's worktree.") from None
        if raw is not None:
            self._clone_specs[env] = (raw, services)
        return services

    def list_envs(self) -> list[EnvInfo]:
        out = [self._info(PROD, None, detail=False)]
        out += [self._info(row["name"], row, detail=False) for row in self.state.envs()]
        return out

    def status(self, env: str) -> EnvInfo:
        check_env_name(env)
        if env == PROD:
            return self._info(PROD, None, detail=True)
        row = self.state.env(env)
        if row is None:
            raise NotFound(f"no environment named {env!r}.", self._names_hint())
        return self._info(env, row, detail=True)

    def _info(self, env: str, row: Any, detail: bool) -> EnvInfo:
        if env == PROD:
            info = EnvInfo(name=PROD, kind="prod", state="", branch=self.spec.prod_branch, worktree=self.root)
        else:
            info = EnvInfo(name=env, kind="clone", state="", branch=row["branch"], worktree=self.worktree(env),
                           created_at=row["created_at"], source=row["source"], forked_commit=row["forked_commit"],
                           last_reset=row["last_reset"])
        try:
            ctx = self.context(env)
            statuses = self.backend.status(ctx)
            info.services = {n: s.as_dict() for n, s in statuses.items()}
        except ReproError as exc:
            statuses = {}
            info.services = {}
            info.state = "broken"
            info.stores = {"error": {"message": exc.message}}
        info.stores = {n: {"type": s.store.type,
                           "location": s.prod_location() if env == PROD else s.location(env)}
                       for n, s in self.stores.items()}
        if env != PROD:
            info.snapshots = self.state.snapshots(env)
            for snap in info.snapshots:
                snap.ready = all(st.ready_for(env) == snap.id for st in self.stores.values()) if self.stores else True
                if detail:
                    snap.size = sum(st.size(env, snap.name) for st in self.stores.values())
            info.can_undo_reset = bool(self.stores) and all(s.has_undo(env) for s in self.stores.values())
        if row is not None and row["status"] != "ok":
            info.state = "pending"
        elif not info.state:
            states = {s.state for s in statuses.values()}
            if not states:
                info.state = "ready"
            elif states == {"running"}:
                info.state = "running"
            elif "crashed" in states:
                info.state = "crashed"
            elif states == {"stopped"}:
                info.state = "stopped"
            else:
                info.state = "partial"
        return info

    # fork -----------------------------------------------------------------------------
    def fork(self, source: str, name: str, progress: Progress | None = None) -> EnvInfo:
        src_env, src_snap = parse_ref(source)
        check_env_name(name, allow_prod=False)
        if src_snap and src_env == PROD:
            raise InvalidInput("prod has no snapshots; fork prod itself, or a clone's snapshot (CLONE@SNAPSHOT).")
        repo = self._repo()
        branch = BRANCH_PREFIX + name

        def can_fork() -> None:
            if self.state.env(name):
                raise Refused(f"a clone named {name!r} exists already.",
                              f"Choose another name, or destroy it first: repro-tui destroy {name}")
            if src_env != PROD and self.state.env(src_env) is None:
                raise NotFound(f"cannot fork {source!r}: no environment named {src_env!r}.", self._names_hint())
            if src_snap and self.state.snapshot(src_env, src_snap) is None:
                raise NotFound(f"{src_env} has no snapshot named {src_snap!r}.",
                               f"See its snapshots: repro-tui snapshots {src_env}")
            if repo.branch_exists(branch):
                raise Refused(f"the branch {branch} exists already (left by an earlier clone, with commits prod "
                              "lacks).", f"Merge or delete it (git branch -D {branch}), or choose another name.")

        can_fork()
        if src_env == PROD:
            start = repo.rev(self.spec.prod_branch)
            if start is None:
                raise Refused(f"prod's branch {self.spec.prod_branch!r} does not exist (or has no commit).",
                              "Commit on it first, or set prod.branch in repro.yaml.")
            for st_name, store in self.stores.items():
                store.check(self.spec.scrub_rules(st_name))
        else:
            start = None
        with self._operation("fork", name, {"source": source, "branch": branch}, progress, check=can_fork) as op:
            tree = None
            if src_env != PROD:
                from workbench.vcs import Worktree

                src_wt = Worktree(self.worktree(src_env))
                tree = self.state.snapshot_tree(src_env, src_snap) if src_snap else src_wt.tree_commit("fork source")
                start = src_wt.git.rev_parse(f"{tree}^")
            op.note(branch_created=True)
            with op.step("worktree"):
                repo.add_worktree(self.worktree(name), branch, start)
                if tree:
                    from workbench.vcs import Worktree

                    Worktree(self.worktree(name)).restore_tree(tree)
            self.state.add_env(name, source=source, forked_commit=start, branch=branch, ports={}, status="forking")
            avoid = self.state.used_ports() | set(self.context(PROD).ports.values())
            self.state.update_env(name, ports=self.backend.allocate_ports(self.context(name), avoid))
            ctx = self.context(name)
            with op.step("services prepared"):
                self.backend.create(ctx, op.progress, source=None if src_env == PROD else src_env,
                                    source_snapshot=src_snap)
            for st_name, store in self.stores.items():
                rules = self.spec.scrub_rules(st_name) if src_env == PROD else []
                label = f"copy {st_name}" + (" + scrub" if rules else "")
                with op.step(label):
                    store.fork(name, None if src_env == PROD else src_env, src_snap, rules, op.progress)
            sid = self._new_snapshot_id()
            with op.step("snapshot forked"):
                self._take_snapshot(name, FORKED, sid, first=True)
            with op.step("services started"):
                self.backend.start(ctx, op.progress)
            self.state.update_env(name, status="ok")
        self._spawn_ready(name, FORKED)
        return self.status(name)

    def _undo_fork(self, args: dict[str, Any]) -> str:
        name = args.get("branch", "")[len(BRANCH_PREFIX):]
        if not name:
            return "failed"
        self._remove_env(name, delete_branch=bool(args.get("branch_created")), only_if_merged=False)
        return "rolled-back"

    # snapshots --------------------------------------------------------------------------
    def _new_snapshot_id(self) -> str:
        return uuid.uuid4().hex[:12]

    def _take_snapshot(self, env: str, name: str, sid: str, first: bool = False) -> None:
        from workbench.vcs import Worktree

        wt = Worktree(self.worktree(env))
        commit, dirty = wt.head(), wt.is_dirty()
        tree = wt.tree_commit(f"repro-tui snapshot {env}@{name}")
        wt.keep_ref(f"refs/repro/{env}/{name}", tree)
        for store in self.stores.values():
            if first:  # a fork's: no service has run on the copy yet
                store.first_snapshot(env, name)
            else:
                store.snapshot(env, name)
        self.backend.snapshot_data(self.context(env), name)
        self.state.add_snapshot(env, name, sid, commit, tree, dirty)

    def snapshots(self, env: str) -> list[SnapshotInfo]:
        if env == PROD:
            check_env_name(env)
            return []
        return self.status(env).snapshots

    def snapshot(self, env: str, name: str | None = None, progress: Progress | None = None) -> SnapshotInfo:
        self._require_clone(env, "snapshot")
        if name is None:
            taken = {s.name for s in self.state.snapshots(env)}
            n = 1
            while f"s{n}" in taken:
                n += 1
            name = f"s{n}"
        check_snapshot_name(name, allow_reserved=False)
        snap_name = name

        def name_free() -> None:
            self._require_clone(env, "snapshot")
            if self.state.snapshot(env, snap_name):
                raise Refused(f"{env} has a snapshot named {snap_name!r} already.",
                              f"Choose another name, or delete it: repro-tui snapshot {env} --delete {snap_name}")

        name_free()
        sid = self._new_snapshot_id()
        with self._operation("snapshot", env, {"env": env, "snapshot": name, "id": sid}, progress,
                             check=name_free) as op:
            with op.step(f"snapshot {name}"):
                self._take_snapshot(env, name, sid)
        self._spawn_ready(env, name)
        snap = self.state.snapshot(env, name)
        assert snap is not None
        snap.size = sum(st.size(env, name) for st in self.stores.values())
        return snap

    def _undo_snapshot(self, args: dict[str, Any]) -> str:
        env = self._journal_env(args)
        return self._drop_snapshot(env, args["snapshot"]) if env else "failed"

    def _journal_env(self, args: dict[str, Any]) -> str | None:
        return args.get("env")

    def _drop_snapshot(self, env: str, name: str, op: Operation | None = None) -> str:
        step = op.step if op else (lambda _n: _null())
        with self._ready_lock(env):
            with step("snapshot data deleted"):
                for store in self.stores.values():
                    store.delete_snapshot(env, name)
                if self.state.env(env) is not None:
                    self.backend.delete_snapshot_data(self.context(env), name)
            with step("snapshot forgotten"):
                from workbench.vcs import Worktree

                if self.worktree(env).exists():
                    Worktree(self.worktree(env)).drop_ref(f"refs/repro/{env}/{name}")
                self.state.remove_snapshot(env, name)
                shutil.rmtree(self.repro_dir / "snapshots" / env / name, ignore_errors=True)
        return "rolled-back"

    def delete_snapshot(self, env: str, name: str) -> None:
        self._require_clone(env, "deleting a snapshot")
        check_snapshot_name(name)
        if self.state.snapshot(env, name) is None:
            raise NotFound(f"{env} has no snapshot named {name!r}.", f"See them: repro-tui snapshots {env}")
        if name == FORKED:
            raise Refused(f"'{FORKED}' is the state {env} was forked in; it is kept for as long as the clone.",
                          "Delete other snapshots, or destroy the clone.")
        def still_there() -> None:
            self._require_clone(env, "deleting a snapshot")
            if self.state.snapshot(env, name) is None:
                raise NotFound(f"{env} has no snapshot named {name!r}.", f"See them: repro-tui snapshots {env}")

        with self._operation("delete-snapshot", env, {"env": env, "snapshot": name}, check=still_there) as op:
            self._drop_snapshot(env, name, op)

    def _undo_delete_snapshot(self, args: dict[str, Any]) -> str:
        self._drop_snapshot(args["env"], args["snapshot"])
        return "completed-by-recovery"

    # reset ----------------------------------------------------------------------------
    def reset(self, env: str, snapshot: str | None = None, code: bool = False,
              progress: Progress | None = None) -> SnapshotInfo:
        self._require_clone(env, "reset")
        snaps = self.state.snapshots(env)
        if snapshot is None:
            if not snaps:
                raise Refused(f"{env} has no snapshot to reset to.", f"Take one: repro-tui snapshot {env}")
            target = snaps[-1]
        else:
            check_snapshot_name(snapshot)
            found = self.state.snapshot(env, snapshot)
            if found is None:
                raise NotFound(f"{env} has no snapshot named {snapshot!r}.", f"See them: repro-tui snapshots {env}")
            target = found
        ctx = self.context(env)
        def still_there() -> None:
            self._require_clone(env, "reset")
            if self.state.snapshot(env, target.name) is None:
                raise NotFound(f"{env} has no snapshot named {target.name!r}.", f"See them: repro-tui snapshots {env}")

        with self._operation("reset", env, {"env": env, "snapshot": target.name, "id": target.id, "code": code},
                             progress, check=still_there) as op:
            with self._ready_lock(env, progress):
                was_running = any(s.state == "running" for s in self.backend.status(ctx).values())
                op.note(was_running=was_running)
                with op.step("services stopped"):
                    self.backend.stop_for_reset(ctx)
                used_ready = True
                with op.step("data swapped"):
                    self.backend.keep_undo_data(ctx, target.name, op.progress)
                    op.note(undo_kept=True)
                    for name, store in self.stores.items():
                        used_ready = store.reset(env, target.name, target.id) and used_ready
                        op.note(swapped=[*op.args.get("swapped", []), name])
                    self.backend.reset_data(ctx, target.name)
                if code:
                    tree = self.state.snapshot_tree(env, target.name)
                    if tree:
                        with op.step("worktree restored"):
                            from workbench.vcs import Worktree

                            Worktree(self.worktree(env)).restore_tree(tree)
                self.state.update_env(env, last_reset=target.name)
                if was_running:
                    with op.step("services started"):
                        self.backend.start(self.context(env), op.progress)
                op.message = "from the ready copy" if used_ready else "copied (no ready copy yet)"
        self._spawn_ready(env, target.name)
        return target

    def _undo_reset(self, args: dict[str, Any]) -> str:
        env = args["env"]
        if self.state.env(env) is None:
            return "rolled-back"
        # finish the reset: every store not yet swapped is swapped now
        snap = self.state.snapshot(env, args["snapshot"])
        for name, store in self.stores.items():
            if name in args.get("swapped", []):
                store.recover(env)
            elif not store.recover(env) and snap is not None:
                with self._ready_lock(env):
                    store.reset(env, snap.name, snap.id)
        if snap is not None:
            ctx = self.context(env)
            if not args.get("undo_kept"):
                self.backend.drop_undo_data(ctx)  # cut off while copying: not an undo
            self.backend.reset_data(ctx, snap.name)  # each volume copy starts by emptying its target
        if args.get("code") and snap is not None:
            tree = self.state.snapshot_tree(env, snap.name)
            if tree:
                from workbench.vcs import Worktree

                Worktree(self.worktree(env)).restore_tree(tree)
        self.state.update_env(env, last_reset=args["snapshot"])
        if args.get("was_running"):
            try:
                self.backend.start(self.context(env))
            except ReproError:
                pass
        return "completed-by-recovery"

    def undo_reset(self, env: str, progress: Progress | None = None) -> None:
        self._require_clone(env, "undoing a reset")
        ctx = self.context(env)
        backend_undo = self.backend.has_undo_data(ctx)
        if ((not self.stores and backend_undo is None) or not all(s.has_undo(env) for s in self.stores.values())
                or backend_undo is False):
            raise Refused(f"{env} has no reset to undo.", "A reset keeps the state it replaced; none was made yet.")
        with self._operation("undo-reset", env, {"env": env}, progress,
                             check=lambda: self._require_clone(env, "undoing a reset")) as op:
            with self._ready_lock(env, progress):
                was_running = any(s.state == "running" for s in self.backend.status(ctx).values())
                op.note(was_running=was_running)
                with op.step("services stopped"):
                    self.backend.stop_for_reset(ctx)
                with op.step("data swapped"):
                    for store in self.stores.values():
                        store.undo_reset(env)
                    self.backend.undo_data(ctx, note=lambda stage: op.note(volumes=stage), progress=op.progress)
                if was_running:
                    with op.step("services started"):
                        self.backend.start(ctx, op.progress)

    def _undo_undo_reset(self, args: dict[str, Any]) -> str:
        env = args["env"]
        for store in self.stores.values():
            store.recover(env)
        if self.state.env(env) is not None:
            if args.get("volumes"):  # finish swapping the volumes from the last stage the undo recorded
                self.backend.undo_data(self.context(env), done=args["volumes"])
            else:  # cut off before the volumes' first stage: their swap copies are half-made
                self.backend.drop_undo_data(self.context(env), swap_only=True)
        if args.get("was_running") and self.state.env(env) is not None:
            try:  # the undo stopped them: a cut-off undo must not leave the clone down
                self.backend.start(self.context(env))
            except ReproError:
                pass
        return "completed-by-recovery"

    # ready copies (made in the background) ----------------------------------------------
    @contextmanager
    def _ready_lock(self, env: str, progress: Progress | None = None) -> Iterator[None]:
        lock = WriterLock(self.repro_dir / "ready" / f"{env}.lock")
        lock.path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire(f"ready copy of {env}", timeout=600,
                     on_wait=(lambda _m: progress("waiting for the ready copy")) if progress else None)
        try:
            yield
        finally:
            lock.release()

    def _spawn_ready(self, env: str, snapshot: str) -> None:
        if not self.stores or os.environ.get("REPRO_READY") == "sync":
            if self.stores:
                self.make_ready(env, snapshot)
            return
        log = self.repro_dir / "run" / env
        log.mkdir(parents=True, exist_ok=True)
        with open(log / "ready.log", "ab") as out:
            subprocess.Popen([sys.executable, "-m", "workbench.ready", str(self.root), env, snapshot],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, cwd=self.root)

    def make_ready(self, env: str, snapshot: str) -> bool:
        """Prepare the ready copy of a snapshot (run by the detached helper). Journaled."""
        with self._ready_lock(env):
            if self.state.env(env) is None:
                return False
            for store in self.stores.values():
                store.discard_trash(env)
            snap = self.state.snapshot(env, snapshot)
            if snap is None:
                return False
            todo = [s for s in self.stores.values() if s.ready_for(env) != snap.id]
            if not todo:
                return True
            jid = self.state.begin("prepare-ready", env, {"env": env, "snapshot": snapshot, "pid": os.getpid()})
            t0 = time.perf_counter()
            try:
                for store in todo:
                    store.make_ready(env, snapshot, snap.id)
            except Exception as exc:
                self.state.finish(jid, "failed", self._redact(str(exc)))
                raise
            self.state.add_step(jid, "ready copy", time.perf_counter() - t0)
            self.state.finish(jid, "ok")
            return True

    # promote --------------------------------------------------------------------------
    def promote_preview(self, env: str) -> tuple[list[str], str]:
        self._require_clone(env, "promote")
        from workbench.vcs import Worktree

        wt = Worktree(self.worktree(env))
        return wt.changed_files(), self._redact_diff(wt.diff_text(), env)

    def _redact_diff(self, text: str, env: str | None = None) -> str:
        import re

        pattern = re.compile(r"^([+\- ])(\s*[\"']?)([A-Za-z0-9_.\-]+)([\"']?\s*[:=]\s*)(.+)$")
        values = self._secret_values(env)
        out = []
        for line in text.splitlines():
            m = pattern.match(line)
            if m and not line.startswith(("+++", "---")) and self.secrets.is_secret_key(m.group(3)):
                line = f"{m.group(1)}{m.group(2)}{m.group(3)}{m.group(4)}{self.secrets.tag(m.group(5).strip())}"
            out.append(self.secrets.redact_text(line, values))
        return "\n".join(out)

    def promote(self, env: str, message: str, merge: bool = False, progress: Progress | None = None) -> PromoteResult:
        row = self._require_clone(env, "promote")
        if not message or not message.strip():
            raise InvalidInput("a commit message is needed.", f"repro-tui promote {env} -m 'Fix ...'")
        from workbench.vcs import Worktree

        wt = Worktree(self.worktree(env))
        name, email = wt.identity()
        if not name or not email:
            raise Refused("git does not know who you are, so it cannot commit.",
                          'Set it once: git config --global user.name "Your Name" && '
                          'git config --global user.email you@example.com')
        repo = self._repo()
        changed = wt.changed_files()
        ahead = repo.commits_not_in(row["branch"], self.spec.prod_branch)
        if not changed and not ahead:
            raise Refused(f"nothing to promote: {env} has no change and no commit that prod's branch lacks.",
                          f"Change code or config in {self.worktree(env)} first.")
        prod_wt = None
        if merge:
            prod_wt = Worktree(self.root)
            if prod_wt.current_branch() != self.spec.prod_branch:
                raise Refused(f"prod's checkout is not on {self.spec.prod_branch}, so it cannot be merged into.",
                              f"Check out {self.spec.prod_branch} in {self.root}, or promote without --merge.")
            if prod_wt.is_dirty():
                raise Refused("prod's checkout has uncommitted changes; a merge could mix them in.",
                              f"Commit or stash them in {self.root}, or promote without --merge.")
        bad = [f for f in changed if f.startswith(".repro/") or self._is_store_file(env, f)]
        if bad:
            raise Refused(f"refusing to commit data files: {', '.join(bad[:5])}.",
                          "Data never goes into git: move them out of the worktree or git-ignore them.")
        snap = row["last_reset"] or (self.state.snapshots(env)[-1].name if self.state.snapshots(env) else FORKED)
        text = self._redact(message.strip(), env)
        full = (f"{text}\n\nRepro-Environment: {env}\nRepro-Forked-From: {row['forked_commit']}\n"
                f"Repro-Snapshot: {env}@{snap}\n")
        with self._operation("promote", env, {"env": env, "merge": merge}, progress,
                             check=lambda: self._require_clone(env, "promote")) as op:
            commit = wt.head()
            op.note(head_before=commit)
            if changed:
                with op.step("commit"):
                    commit = wt.commit_all(full)
            merged = None
            if merge and prod_wt is not None:
                op.note(merging=True, prod_before=repo.rev(self.spec.prod_branch), merged_commit=commit)
                with op.step(f"merge into {self.spec.prod_branch}"):
                    prod_wt.merge(row["branch"], f"Merge {row['branch']}: {text.splitlines()[0]}\n\n"
                                                 f"Repro-Environment: {env}\n")
                merged = self.spec.prod_branch
            op.message = commit[:12]
        return PromoteResult(env=env, branch=row["branch"], commit=commit, files=changed, merged_into=merged)

    def _undo_promote(self, args: dict[str, Any]) -> str:
        """A merge into prod's branch is never finished by recovery, only taken back: a merge
        cut off after git made it (but before the promote was recorded) is undone too."""
        if not args.get("merging"):  # cut off before any merge: a commit on the clone's own branch stays
            head = self._repo().rev(BRANCH_PREFIX + args.get("env", ""))
            committed = args.get("head_before") not in (None, head)
            return "completed-by-recovery" if committed and not args.get("merge") else "rolled-back"
        if (_git_dir(self.root) / "MERGE_HEAD").exists():
            subprocess.run(["git", "merge", "--abort"], cwd=self.root, capture_output=True)
        before, theirs = args.get("prod_before"), args.get("merged_commit")
        repo = self._repo()
        branch = self.spec.prod_branch
        now = repo.rev(branch)
        if not before or not now or now == before:
            return "rolled-back"
        parents = repo.git.rev_list("--parents", "-n", "1", now).split()[1:]
        if now != theirs and parents != [before, theirs]:
            return f"failed (rollback: {branch} moved on after the merge, so the merge was left in place)"
        from workbench.vcs import Worktree

        if Worktree(self.root).current_branch() == branch:
            repo.git.reset("--keep", "--quiet", before)  # --keep: never loses a local change
        else:
            repo.git.update_ref(f"refs/heads/{branch}", before, now)
        return "rolled-back"

    def _is_store_file(self, env: str, rel: str) -> bool:
        base = self.worktree(env)
        for st in self.spec.stores.values():
            if st.path and not Path(st.path).is_absolute():
                p = (base / st.path).resolve()
                f = (base / rel).resolve()
                if f == p or p in f.parents:
                    return True
        return False

    # destroy --------------------------------------------------------------------------
    def destroy(self, env: str, force: bool = False, progress: Progress | None = None) -> list[str]:
        """Remove a clone. Returns notes for the user (e.g. a branch that was kept)."""
        row = self._require_clone(env, "destroy")
        if self.worktree(env).exists() and not force:
            from workbench.vcs import Worktree

            try:
                changed = Worktree(self.worktree(env)).changed_files()
            except Exception:
                changed = []
            if changed:
                shown = ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else "")
                raise Refused(f"{env} has uncommitted changes: {shown}.",
                              f"Promote them (repro-tui promote {env} -m ...), or destroy with --force to lose them.")
        with self._operation("destroy", env, {"env": env, "branch": row["branch"]}, progress,
                             check=lambda: self._require_clone(env, "destroy")) as op:
            self.state.update_env(env, status="destroying")
            notes = self._remove_env(env, delete_branch=True, only_if_merged=True, op=op)
        return notes

    def _undo_destroy(self, args: dict[str, Any]) -> str:
        self._remove_env(args["env"], delete_branch=True, only_if_merged=True)
        return "completed-by-recovery"

    def _remove_env(self, env: str, delete_branch: bool, only_if_merged: bool,
                    op: Operation | None = None) -> list[str]:
        notes = []
        row = self.state.env(env)
        step = op.step if op else (lambda _n: _null())
        if row is not None or self.run_dir(env).exists():
            with step("services removed"):
                try:
                    ctx = self.context(env) if row is not None else None
                except ReproError:
                    ctx = None
                if ctx is None:
                    ctx = EnvContext(name=env, kind="clone", worktree=self.worktree(env), run_dir=self.run_dir(env),
                                     services=self.spec.services)
                self.backend.destroy(ctx)
        with self._ready_lock(env):
            with step("data removed"):
                for store in self.stores.values():
                    store.destroy(env)
                for sub in ("data", "snapshots", "ready", "undo"):
                    shutil.rmtree(self.repro_dir / sub / env, ignore_errors=True)
        repo = self._repo()
        branch = BRANCH_PREFIX + env
        with step("worktree removed"):
            # every ref under the clone's prefix: a snapshot cut off before it was recorded has one too
            refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", f"refs/repro/{env}/"],
                                  cwd=self.root, capture_output=True, text=True).stdout.split()
            for ref in refs:
                subprocess.run(["git", "update-ref", "-d", ref], cwd=self.root, capture_output=True)
            repo.remove_worktree(self.worktree(env))
            if delete_branch and repo.branch_exists(branch):
                ahead = repo.commits_not_in(branch, self.spec.prod_branch) if only_if_merged else 0
                if ahead:
                    notes.append(f"kept the branch {branch}: it has {ahead} commit(s) that "
                                 f"{self.spec.prod_branch} lacks (git branch -D {branch} to drop it).")
                else:
                    repo.delete_branch(branch)
        shutil.rmtree(self.run_dir(env), ignore_errors=True)
        (self.repro_dir / "ready" / f"{env}.lock").unlink(missing_ok=True)
        self.state.remove_env(env)
        return notes

    # services -------------------------------------------------------------------------
    def start(self, env: str, progress: Progress | None = None) -> EnvInfo:
        self._check_service_control(env, "start")
        with self._operation("start", env, {"env": env}, progress):
            self.backend.start(self.context(env), progress)
        return self.status(env)

    def stop(self, env: str, progress: Progress | None = None) -> EnvInfo:
        self._check_service_control(env, "stop")
        with self._operation("stop", env, {"env": env}, progress):
            self.backend.stop(self.context(env), progress)
        return self.status(env)

    def _check_service_control(self, env: str, what: str) -> None:
        check_env_name(env)
        if env == PROD:
            if self.spec.backend != "local":
                raise ProdReadOnly(f"{what} of prod's containers")
            return
        self._require_clone(env, what)

    def logs(self, env: str, service: str | None = None, follow: bool = False, lines: int = 200) -> Iterator[str]:
        check_env_name(env)
        ctx = self.context(env)
        names = self.backend.service_names(ctx)
        if not names:
            raise NotFound("this workspace declares no service, so there are no logs.")
        if service is None:
            service = names[0]
        elif service not in names:
            raise NotFound(f"no service named {service!r} in {env}.", f"Services: {', '.join(names)}")
        return self.backend.logs(ctx, service, follow, lines)

    def shell_env(self, env: str) -> dict[str, str]:
        check_env_name(env)
        ctx = self.context(env)
        out = {"REPRO_ENV": env, "REPRO_WORKTREE": str(ctx.worktree), "REPRO_WORKSPACE": str(self.root)}
        for name, path in ctx.store_paths.items():
            out[f"REPRO_STORE_{name.upper().replace('-', '_')}"] = path
        for name, port in ctx.ports.items():
            out[f"REPRO_PORT_{name.upper().replace('-', '_')}"] = str(port)
        if hasattr(self.backend, "service_env"):
            for svc in ctx.services.values():
                out.update(self.backend.service_env(ctx, svc))
        return out

    def journal(self, env: str | None = None, limit: int = 50) -> list[JournalEntry]:
        if env is not None:
            check_env_name(env)
        return self.state.journal(env, limit)

    # diff -----------------------------------------------------------------------------
    def side(self, ref: str) -> Side:
        env, snap = parse_ref(ref)
        if env != PROD and self.state.env(env) is None:
            raise NotFound(f"no environment named {env!r}.", self._names_hint())
        if snap and env == PROD:
            raise InvalidInput("prod has no snapshots.", "Compare prod, a clone, or CLONE@SNAPSHOT.")
        ctx = self.context(env)
        if snap:
            tree = self.state.snapshot_tree(env, snap)
            if tree is None:
                raise NotFound(f"{env} has no snapshot named {snap!r}.", f"See them: repro-tui snapshots {env}")
            root = self._tree_folder(tree)
            services = ctx.services
            spec_file = root / SPEC_FILE
            if spec_file.exists():
                try:
                    services = load_spec(root, spec_file).services
                except InvalidInput:
                    pass
            return Side(ref=ref, env=env, snapshot=snap, kind="clone", config_root=root, services=services,
                        env_overrides=ctx.env_overrides, service_overrides=ctx.service_overrides,
                        ports={k: v for k, v in ctx.ports.items()},
                        store_locations={n: s.snapshot_location(env, snap) for n, s in self.stores.items()},
                        runtime=None)
        runtime = {n: s.as_dict() for n, s in self.backend.status(ctx).items()}
        return Side(ref=ref, env=env, snapshot=None, kind=ctx.kind, config_root=ctx.worktree,
                    services=ctx.services, env_overrides=ctx.env_overrides if ctx.kind == "clone" else {},
                    service_overrides=ctx.service_overrides if ctx.kind == "clone" else {},
                    ports=dict(ctx.ports), store_locations=dict(ctx.store_paths), runtime=runtime)

    def _tree_folder(self, tree: str) -> Path:
        """A snapshot's files, extracted once into a cache (read-only use)."""
        folder = self.repro_dir / "cache" / "trees" / tree
        if not folder.exists():
            tmp = folder.with_name(f".tmp-{tree}-{os.getpid()}")
            tmp.mkdir(parents=True, exist_ok=True)
            archive = subprocess.run(["git", "archive", "--format=tar", tree], cwd=self.root, capture_output=True,
                                     check=True)
            subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
            try:
                os.replace(tmp, folder)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
        return folder

    def diff(self, a: str, b: str, **options: Any):
        from workbench.diff import compute_diff

        return compute_diff(self, self.side(a), self.side(b), **options)

    def watch(self, a: str, b: str, callback: Callable[[Any], None], stop_event: threading.Event, **options: Any):
        from workbench.diff.watch import watch

        return watch(self, a, b, callback, stop_event, **options)


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


@contextmanager
def _null() -> Iterator[None]:
    yield


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
