"""The workspace: the one way in for the CLI and the screen.

A small facade. It opens a folder (finds the root, reads ``repro.yaml``, opens the state)
and hands out the parts that do the work:

* ``envs`` (``workbench.environments``): listing, status, contexts, diff sides — readers;
* ``transactions`` (``workbench.journal``): runs the operations of ``workbench.ops`` as
  journaled transactions under the writer lock, and recovers the ones cut off;
* ``ready`` (``workbench.ops.ready``): ready copies made in the background;
* ``fence`` (``workbench.fence``): every write an operation makes passes through it;
* ``redactor`` (``workbench.redact``): every text that leaves repro-tui passes through it.

Its methods (``fork``, ``reset``, ``list_envs``, ...) are what the CLI and the screen call.
"""

from __future__ import annotations

import os
import secrets as _secrets
import threading
import time
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.backends import make_backend
from workbench.backends.base import Backend, EnvContext
from workbench.environments import Environments, parse_ref, read_bytes
from workbench.errors import Refused
from workbench.fence import Fence
from workbench.journal import Journal, Recovered
from workbench.mailbox import Mail, MailMessage
from workbench.model import EnvInfo, JournalEntry, PromoteResult, Side, SnapshotInfo
from workbench.names import PROD, check_env_name
from workbench.private import keep_private, user_umask
from workbench.redact import Redactor
from workbench.secrets import SecretPolicy
from workbench.spec import SPEC_FILE, Spec, load_spec
from workbench.state import State
from workbench.stores import make_store
from workbench.stores.base import Store

if TYPE_CHECKING:
    from workbench.check_results import CheckResult
    from workbench.diff.model import DiffReport
    from workbench.drift import Drift
    from workbench.ops.base import Operation
    from workbench.ops.ready import ReadyCopies
    from workbench.postmortem import PostMortem
    from workbench.vcs import Repo

Progress = Callable[[str], None]
REPRO_DIR = ".repro"

__all__ = ["Workspace", "find_root", "parse_ref"]


def find_root(start: Path | None = None) -> Path:
    """The workspace root: upward from ``start`` like git, and from inside a clone's
    worktree (``.repro/envs/NAME``) the main workspace that owns it."""
    here = (start or Path.cwd()).resolve()
    lone: Path | None = None   # a repro.yaml without a git repository
    for folder in (here, *here.parents):
        if folder.name == "envs" and folder.parent.name == REPRO_DIR:
            return folder.parent.parent
        if (folder / SPEC_FILE).is_file() and not (folder / ".git").exists():
            lone = lone or folder
        if (folder / SPEC_FILE).is_file() and (folder / ".git").exists():
            git_file = folder / ".git"
            if git_file.is_file():  # a linked worktree: the main one owns the workspace
                common = _common_dir_of(git_file)
                if common and (common.parent / SPEC_FILE).is_file():
                    return common.parent
            return folder
    if lone is not None:
        raise Refused(f"{lone} has a repro.yaml but is not a git repository: repro-tui keeps code and config on "
                      "git branches.", f"Make it one: cd {lone} && git init && git add -A && git commit -m 'first'")
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


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.spec: Spec = load_spec(self.root)
        self.spec_bytes = read_bytes(self.root / SPEC_FILE)
        self.repro_dir = self.root / REPRO_DIR
        user_umask()                          # remembered before it changes
        self.repro_dir.mkdir(mode=0o770, exist_ok=True)
        keep_private(self.repro_dir)
        self._exclude_repro()
        self.state = State(self.repro_dir / "state.db")
        self.id = self._workspace_id()
        self.secrets = SecretPolicy(self.spec.secrets, self.spec.not_secrets, key=self._secret_key())
        self.envs = Environments(self)
        self.redactor = Redactor(self.secrets, self.envs.secret_values)
        self.fence = Fence(self.root, self.repro_dir)
        self.transactions = Journal(self)
        self._backend: Backend | None = None
        self._stores: dict[str, Store] | None = None
        self.clock: Callable[[], float] = time.time

    @cached_property
    def ready(self) -> ReadyCopies:
        """The snapshots' ready copies (the operations' package is imported when first needed:
        a read-only command such as ``diff`` starts 5 ms sooner without it)."""
        from workbench.ops.ready import ReadyCopies

        return ReadyCopies(self)

    @classmethod
    def open(cls, path: Path | str | None = None) -> Workspace:
        return cls(find_root(Path(path) if path else None))

    def close(self) -> None:
        self.state.close()

    # set-up -----------------------------------------------------------------------------
    def _exclude_repro(self) -> None:
        """``.repro/`` is kept out of git through ``.git/info/exclude``, never prod's .gitignore."""
        dot = self.root / ".git"
        git_dir = (_common_dir_of(dot) or dot) if dot.is_file() else dot
        info = git_dir / "info"
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
            tmp.write_text(os.urandom(6).hex())
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

    # the parts, made when first used ------------------------------------------------------
    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = make_backend(self.spec, self.id, self.repro_dir, self.secrets, self.fence,
                                         self.redactor)
        return self._backend

    @property
    def backend_made(self) -> bool:
        """Whether the backend was made already (reading its secrets must not connect to an engine)."""
        return self._backend is not None

    @property
    def stores(self) -> dict[str, Store]:
        if self._stores is None:
            self._stores = {name: make_store(self.spec, st, self.repro_dir,
                                             self.backend if st.type == "postgres" else None, self.fence)
                            for name, st in self.spec.stores.items()}
            self.fence.prod_paths = [self.root, *(Path(s.prod_location()) for s in self._stores.values()
                                                  if s.is_local)]
        return self._stores

    def repo(self) -> Repo:
        from workbench.vcs import Repo  # imported here: git is not needed to read the workspace

        return Repo(self.root)

    # paths ------------------------------------------------------------------------------
    def worktree(self, env: str) -> Path:
        return self.root if env == PROD else self.repro_dir / "envs" / env

    def run_dir(self, env: str) -> Path:
        return self.repro_dir / "run" / env

    # reading ------------------------------------------------------------------------------
    def list_envs(self) -> list[EnvInfo]:
        return self.envs.list()

    def status(self, env: str) -> EnvInfo:
        return self.envs.status(env)

    def context(self, env: str) -> EnvContext:
        return self.envs.context(env)

    def snapshots(self, env: str) -> list[SnapshotInfo]:
        check_env_name(env)
        return [] if env == PROD else self.status(env).snapshots

    def journal(self, env: str | None = None, limit: int = 50) -> list[JournalEntry]:
        if env is not None:
            check_env_name(env)
        return self.state.journal(env, limit)

    def logs(self, env: str, service: str | None = None, follow: bool = False, lines: int = 200) -> Iterator[str]:
        return self.envs.logs(env, service, follow, lines)

    def shell_env(self, env: str) -> dict[str, str]:
        return self.envs.shell_env(env)

    def mail(self, env: str) -> list[Mail]:
        """The messages a clone's mail sink captured, oldest first."""
        return self.envs.mailbox(env).list()

    def mail_message(self, env: str, mail_id: int) -> MailMessage:
        return self.envs.mailbox(env).get(mail_id)

    def promote_preview(self, env: str) -> tuple[list[str], str]:
        from workbench.ops.promote import preview

        return preview(self, env)

    def check_results(self, env: str | None = None, since: float | None = None) -> list[CheckResult]:
        """Every check result kept (of one environment, since a time), oldest first."""
        from workbench.check_results import CheckResult

        return [CheckResult.from_row(r) for r in self.state.check_results(env, since)]

    def latest_checks(self) -> list[CheckResult]:
        """The last result of each check on each environment."""
        from workbench.check_results import CheckResult

        return [CheckResult.from_row(r) for r in self.state.latest_check_results()]

    def drift(self) -> Drift:
        """What prod runs that its branch or its declaration does not say (read only)."""
        from workbench.drift import prod_drift

        return prod_drift(self)

    def postmortem(self, envs: list[str] | None = None, since: float | None = None) -> PostMortem:
        """The evidence of an investigation, assembled (``workbench.postmortem_md`` writes it)."""
        from workbench.postmortem import gather

        return gather(self, envs, since)

    def save_postmortem(self, envs: list[str] | None = None) -> tuple[Path, str]:
        """The post-mortem written as Markdown under ``.repro/reports/``; (its path, its text)."""
        from workbench.postmortem import default_path, write_report
        from workbench.postmortem_md import markdown

        text = self.redactor.text(markdown(self.postmortem(envs)))
        path = default_path(self, envs)
        write_report(path, text)
        return path, text

    def side(self, ref: str) -> Side:
        return self.envs.side(ref)

    def diff(self, a: str, b: str, **options: Any) -> DiffReport:
        from workbench.diff import compute_diff

        return compute_diff(self.envs.diff_source(), self.side(a), self.side(b), **options)

    def watch(self, a: str, b: str, callback: Callable[[Any], None], stop_event: threading.Event,
              **options: Any) -> None:
        from workbench.diff.watch import watch

        watch(self.envs.diff_source(), a, b, callback, stop_event, **options)

    # changing: each an operation of the table, run as a journaled transaction -------------
    def run(self, op: Operation) -> Any:
        return self.transactions.run(op)

    def fork(self, source: str, name: str, progress: Progress | None = None, with_drift: bool = False) -> EnvInfo:
        from workbench.ops.fork import Fork

        return self.run(Fork(self, source, name, progress, with_drift=with_drift))

    def snapshot(self, env: str, name: str | None = None, progress: Progress | None = None) -> SnapshotInfo:
        from workbench.ops.snapshot import Snapshot

        return self.run(Snapshot(self, env, name, progress))

    def delete_snapshot(self, env: str, name: str) -> None:
        from workbench.ops.delete_snapshot import DeleteSnapshot

        self.run(DeleteSnapshot(self, env, name))

    def reset(self, env: str, snapshot: str | None = None, code: bool = False,
              progress: Progress | None = None) -> SnapshotInfo:
        from workbench.ops.reset import Reset

        return self.run(Reset(self, env, snapshot, code, progress))

    def undo_reset(self, env: str, progress: Progress | None = None) -> None:
        from workbench.ops.undo_reset import UndoReset

        self.run(UndoReset(self, env, progress))

    def promote(self, env: str, message: str, merge: bool = False, progress: Progress | None = None) -> PromoteResult:
        from workbench.ops.promote import Promote

        return self.run(Promote(self, env, message, merge, progress))

    def destroy(self, env: str, force: bool = False, progress: Progress | None = None) -> list[str]:
        """Remove a clone. Returns notes for the user (e.g. a branch that was kept)."""
        from workbench.ops.destroy import Destroy

        return self.run(Destroy(self, env, force, progress))

    def start(self, env: str, progress: Progress | None = None) -> EnvInfo:
        from workbench.ops.start import Start

        return self.run(Start(self, env, progress))

    def stop(self, env: str, progress: Progress | None = None) -> EnvInfo:
        from workbench.ops.stop import Stop

        return self.run(Stop(self, env, progress))

    def restart(self, env: str, progress: Progress | None = None) -> EnvInfo:
        from workbench.ops.restart import Restart

        return self.run(Restart(self, env, progress))

    def check(self, env: str, names: list[str] | None = None, trigger: str = "cli",
              progress: Progress | None = None) -> list[CheckResult]:
        """Run repro.yaml's checks on ``env`` (and on prod beside it); the results are kept."""
        from workbench.ops.check import Check

        return self.run(Check(self, env, names, trigger, progress))

    def make_ready(self, env: str, snapshot: str) -> bool:
        """Prepare the ready copy of a snapshot (run by the detached helper)."""
        return self.ready.make(env, snapshot)

    # recovery -----------------------------------------------------------------------------
    def pending(self) -> list[JournalEntry]:
        """Operations that were cut off and wait for recovery (shown by readers)."""
        return self.transactions.pending()

    def try_recover(self) -> list[Recovered]:
        """Recover what was cut off unless a writer is at work; never waits."""
        return self.transactions.try_recover()

    def recover(self) -> list[Recovered]:
        """Take the lock just to recover whatever was cut off; what happened to each."""
        return self.transactions.recover()
