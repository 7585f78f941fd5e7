"""Plain data the engine returns to both faces (CLI and screen). No I/O here."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.spec import ServiceSpec


@dataclass
class SnapshotInfo:
    env: str
    name: str
    id: str
    created_at: float
    commit: str | None            # the worktree's HEAD when the snapshot was taken
    dirty: bool                   # the worktree had uncommitted changes (kept as a patch)
    size: int = 0                 # bytes of the snapshot's copies
    ready: bool = False           # a ready copy exists: a reset to it is instant

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EnvInfo:
    name: str
    kind: str                     # "prod" | "clone"
    state: str                    # running | stopped | partial | crashed | pending (an interrupted operation)
    branch: str
    worktree: Path
    created_at: float | None = None
    source: str | None = None     # what it was forked from: "prod", "b1", "b1@s2"
    forked_commit: str | None = None
    services: dict[str, dict[str, Any]] = field(default_factory=dict)   # name -> {state, port, pid?}
    stores: dict[str, dict[str, Any]] = field(default_factory=dict)     # name -> {type, location}
    snapshots: list[SnapshotInfo] = field(default_factory=list)
    last_reset: str | None = None  # the snapshot last reset to
    can_undo_reset: bool = False
    notes: list[str] = field(default_factory=list)   # what an operation says about it (a fork: its reach)
    owner: str | None = None       # the user who forked the clone
    last_reset_by: str | None = None   # user@host of the newest reset or undo of the clone (running or done)
    last_reset_at: float | None = None
    restart_needed: list[str] = field(default_factory=list)   # files changed since the services started

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["worktree"] = str(self.worktree)
        d["snapshots"] = [s.as_dict() for s in self.snapshots]
        return d


@dataclass
class JournalEntry:
    id: int
    op: str                       # fork, snapshot, reset, undo-reset, promote, destroy, start, stop, ...
    env: str | None
    args: dict[str, Any]
    started_at: float
    finished_at: float | None
    outcome: str                  # running | ok | failed | rolled-back | completed-by-recovery
    message: str | None
    user: str
    host: str
    steps: list[dict[str, Any]] = field(default_factory=list)   # [{step, seconds}]

    @property
    def seconds(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = self.seconds
        return d


@dataclass
class PromoteResult:
    env: str
    branch: str
    commit: str
    files: list[str]
    merged_into: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Side:
    """One side of a diff: an environment as it is now, or one of its snapshots."""

    ref: str                          # "prod", "b1", "b1@forked"
    env: str
    snapshot: str | None
    kind: str                         # "prod" | "clone"
    config_root: Path                 # where its config files are read (worktree, or the snapshot's copy)
    services: dict[str, ServiceSpec]  # declared service definitions that apply to it
    env_overrides: dict[str, str]     # clone.overrides.env (empty for prod)
    service_overrides: dict[str, dict[str, Any]]
    ports: dict[str, int]             # service -> port it runs on
    store_locations: dict[str, str]   # store -> SQLite file / folder / connection string
    runtime: dict[str, dict[str, Any]] | None = None   # service -> status dict; None for a snapshot
