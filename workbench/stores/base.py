"""What the engine asks of a store, and the folder layout shared by local stores.

A local store's copy for one environment is one folder, ``.repro/data/ENV/STORE/``,
so that a reset is a rename of whole folders (a SQLite file moves with its ``-wal``
and ``-journal`` files):

    .repro/data/ENV/STORE/            the live copy the clone's services use
    .repro/snapshots/ENV/SNAP/STORE/  immutable copies (files made read-only)
    .repro/ready/ENV/STORE/           a ready copy of one snapshot, for an instant reset
    .repro/ready/ENV/STORE.json       which snapshot the ready copy holds (written first)
    .repro/undo/ENV/STORE/            what the last reset replaced, for undo
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.errors import Refused
from workbench.fence import Fence
from workbench.spec import ScrubRule, Spec, StoreSpec

Progress = Callable[[str], None]


class NoSpace(Refused):
    """A copy ran out of disk space (the engine rolls back and says what to do)."""


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT from the OS, SQLITE_FULL from SQLite, or a store's NoSpace."""
    import errno
    import sqlite3

    if isinstance(exc, NoSpace):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.Error) and (getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
                                                or "disk is full" in str(exc))


class Store(ABC):
    """One store of the workspace, for every environment."""

    def __init__(self, spec: Spec, store: StoreSpec, repro_dir: Path, fence: Fence | None = None) -> None:
        self.spec = spec
        self.store = store
        self.name = store.name
        self.repro_dir = repro_dir
        # every write of a store passes the fence: it proves the target is a clone's own
        self.fence = fence or Fence(repro_dir.parent, repro_dir)

    is_local = False        # its copies are files under .repro/ (prod_location is a path)

    # where things are ----------------------------------------------------------
    @abstractmethod
    def prod_location(self) -> str:
        """prod's copy: a path, or a connection string without a password."""

    @abstractmethod
    def location(self, env: str) -> str:
        """A clone's copy, as ``{stores.NAME.path}`` expands to."""

    def snapshot_location(self, env: str, snapshot: str) -> str:
        return self.location(env)

    # checks ------------------------------------------------------------------
    def check(self, rules: list[ScrubRule]) -> None:  # noqa: B027
        """Raise InvalidInput/Refused if prod's data is missing or a scrub rule names
        an unknown table or column. Runs before anything is copied."""

    # operations --------------------------------------------------------------
    @abstractmethod
    def fork(self, dest: str, source: str | None, source_snapshot: str | None,
             rules: list[ScrubRule], progress: Progress | None = None) -> None:
        """Make ``dest``'s copy: from prod (source None, scrubbed), from a clone's live
        copy, or from one of its snapshots (as it is, not scrubbed twice)."""

    @abstractmethod
    def snapshot(self, env: str, snapshot: str) -> None: ...

    def first_snapshot(self, env: str, snapshot: str) -> None:
        """The snapshot a fork takes before any service of the clone has run."""
        self.snapshot(env, snapshot)

    @abstractmethod
    def delete_snapshot(self, env: str, snapshot: str) -> None: ...

    @abstractmethod
    def make_ready(self, env: str, snapshot: str, snapshot_id: str) -> None:
        """Prepare a copy of ``snapshot`` that a reset can swap in at once."""

    @abstractmethod
    def ready_for(self, env: str) -> str | None:
        """The snapshot id the ready copy holds, or None."""

    @abstractmethod
    def reset(self, env: str, snapshot: str, snapshot_id: str) -> bool:
        """Swap in the snapshot's data (services are stopped). Returns True when the
        ready copy was used (instant), False when the snapshot had to be copied."""

    @abstractmethod
    def undo_reset(self, env: str) -> None:
        """Swap back the state the last reset replaced (and keep the other for redo)."""

    @abstractmethod
    def has_undo(self, env: str) -> bool: ...

    @abstractmethod
    def destroy(self, env: str) -> None:
        """Remove every copy the clone owns. Idempotent."""

    def recover(self, env: str) -> bool:
        """Make the live copy whole after an interrupted reset. Idempotent. True when it
        finished a swap that had been cut off between its renames."""
        return False

    def discard_partial_ready(self, env: str) -> None:  # noqa: B027 - most stores have nothing to discard
        """Remove a ready copy that was cut off half way (the caller holds the ready lock)."""

    def discard_trash(self, env: str) -> None:  # noqa: B027 - most stores have nothing to discard
        """Delete what a reset replaced two resets ago (run in the background after a reset)."""

    @abstractmethod
    def size(self, env: str, snapshot: str | None = None) -> int:
        """Bytes used by the live copy, or by one snapshot."""

    def fingerprint(self, location: str) -> str:
        """A cheap token that changes when the data changes."""
        return ""

    def verify(self, env: str) -> None:  # noqa: B027 - a store in a server has no files to check
        """Raise OutsideClone when the clone's copy leads out of its own folders (a link to
        prod's file planted in its data): before it is read, copied or used."""


# --- local folder stores --------------------------------------------------------

def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


class FolderStore(Store):
    """A store whose copies are folders under ``.repro/`` (SQLite files, folders of files).

    Subclasses say how prod is copied (with scrubbing) and how one copy of the
    store's folder is copied to another (consistently, as fast as the disk allows).
    Every folder they are handed to fill has passed the fence: it is the clone's own."""

    is_local = True

    @abstractmethod
    def copy_from_prod(self, dest_dir: Path, rules: list[ScrubRule], progress: Progress | None) -> None:
        """Fill the empty folder ``dest_dir`` from prod, scrubbed."""

    @abstractmethod
    def copy_dir(self, src_dir: Path, dest_dir: Path, sync: bool = True) -> None:
        """Copy one copy of the store's folder (possibly live) into the new folder ``dest_dir``;
        with ``sync``, on disk when this returns where the store promises durability."""

    @abstractmethod
    def entry(self, folder: Path) -> Path:
        """The path inside a store folder that services use (a file, or the folder)."""

    # layout
    def data_dir(self, env: str) -> Path:
        return self.repro_dir / "data" / env / self.name

    def snapshot_dir(self, env: str, snapshot: str) -> Path:
        return self.repro_dir / "snapshots" / env / snapshot / self.name

    def ready_dir(self, env: str) -> Path:
        return self.repro_dir / "ready" / env / self.name

    def ready_marker(self, env: str) -> Path:
        return self.repro_dir / "ready" / env / f"{self.name}.json"

    def undo_dir(self, env: str) -> Path:
        return self.repro_dir / "undo" / env / self.name

    def location(self, env: str) -> str:
        return str(self.entry(self.data_dir(env)))

    def verify(self, env: str) -> None:
        self.fence.data(env, self.data_dir(env))

    def snapshot_location(self, env: str, snapshot: str) -> str:
        return str(self.entry(self.snapshot_dir(env, snapshot)))

    def _fresh(self, env: str, final: Path) -> Path:
        tmp = final.with_name(f".tmp-{final.name}")
        self.fence.rmtree(env, tmp)
        self.fence.mkdir(env, tmp)
        return tmp

    def _copy_into(self, env: str, tmp: Path, source: Path) -> None:
        """Copy a store folder into ``tmp``; a copy that fails (a full disk) is removed at once,
        so that it holds no space while the error is reported."""
        try:
            self.copy_dir(source, tmp)
            self.fence.make_writable(env, tmp)
        except BaseException:
            self.fence.rmtree(env, tmp)
            raise

    def _mark_ready(self, env: str, snapshot: str, snapshot_id: str) -> None:
        self.fence.write_text(env, self.ready_marker(env), json.dumps({"snapshot": snapshot, "id": snapshot_id}))

    def fork(self, dest, source, source_snapshot, rules, progress=None):
        fence = self.fence
        final = self.data_dir(fence.clone(dest))
        tmp = self._fresh(dest, final)
        if source is None:
            self.copy_from_prod(tmp, rules, progress)
        elif source_snapshot:
            self.copy_dir(fence.data(source, self.snapshot_dir(source, source_snapshot)), tmp)
            fence.make_writable(dest, tmp)
        else:
            self.copy_dir(fence.data(source, self.data_dir(source)), tmp)
        fence.rmtree(dest, final)
        fence.replace(dest, tmp, final)

    def snapshot(self, env, snapshot):
        fence = self.fence
        final = self.snapshot_dir(fence.clone(env), snapshot)
        tmp = self._fresh(env, final)
        self.copy_dir(fence.data(env, self.data_dir(env)), tmp)
        fence.make_read_only(env, tmp)
        fence.replace(env, tmp, final)

    def first_snapshot(self, env, snapshot):
        """The fork's own copy, on disk already and untouched by any service yet, becomes the
        snapshot by a rename; the clone gets a copy of it that the kernel writes back on its
        own instead of one waited for (the snapshot is what must outlive a power cut; a clone
        torn by one is reset to it). Spares a fork the fsync of a whole copy."""
        fence = self.fence
        live, final = self.data_dir(fence.clone(env)), self.snapshot_dir(env, snapshot)
        snap_tmp = final.with_name(f".tmp-{final.name}")
        fence.rmtree(env, snap_tmp)
        fence.mkdir(env, snap_tmp.parent)
        fence.replace(env, live, snap_tmp)
        fence.make_read_only(env, snap_tmp)
        live_tmp = self._fresh(env, live)
        try:
            self.copy_dir(snap_tmp, live_tmp, sync=False)
            fence.make_writable(env, live_tmp)
        except BaseException:
            fence.rmtree(env, live_tmp)
            fence.replace(env, snap_tmp, live)  # as it was (the fork rolls back either way)
            fence.make_writable(env, live)
            raise
        fence.replace(env, snap_tmp, final)
        fence.replace(env, live_tmp, live)

    def delete_snapshot(self, env, snapshot):
        self.fence.rmtree(env, self.snapshot_dir(env, snapshot))
        self.fence.rmtree(env, self.snapshot_dir(env, snapshot).with_name(f".tmp-{self.name}"))

    def make_ready(self, env, snapshot, snapshot_id):
        final = self.ready_dir(self.fence.clone(env))
        tmp = self._fresh(env, final)
        self._copy_into(env, tmp, self.snapshot_dir(env, snapshot))
        self.fence.rmtree(env, final)
        self._mark_ready(env, snapshot, snapshot_id)
        self.fence.replace(env, tmp, final)

    def discard_partial_ready(self, env):
        self.fence.rmtree(env, self.ready_dir(env).with_name(f".tmp-{self.name}"))

    def ready_for(self, env):
        marker, folder = self.ready_marker(env), self.ready_dir(env)
        if not marker.exists() or not folder.exists():
            return None
        try:
            return json.loads(marker.read_text())["id"]
        except (ValueError, KeyError, OSError):
            return None

    def reset(self, env, snapshot, snapshot_id):
        fence = self.fence
        data, undo = self.data_dir(fence.clone(env)), self.undo_dir(env)
        used_ready = self.ready_for(env) == snapshot_id
        if not used_ready:
            # no ready copy of this snapshot: copy it now, beside the live copy
            tmp = self._fresh(env, self.ready_dir(env))
            self._copy_into(env, tmp, self.snapshot_dir(env, snapshot))
            fence.rmtree(env, self.ready_dir(env))
            self._mark_ready(env, snapshot, snapshot_id)
            fence.replace(env, tmp, self.ready_dir(env))
        fence.mkdir(env, undo.parent)
        trash = undo.with_name(f".trash-{self.name}")
        fence.rmtree(env, trash)
        if undo.exists():
            fence.replace(env, undo, trash)
        if data.exists():
            fence.replace(env, data, undo)
        fence.mkdir(env, data.parent)   # (a clone's data folder deleted by hand: the reset brings it back)
        fence.replace(env, self.ready_dir(env), data)
        fence.unlink(env, self.ready_marker(env))
        # the state before the last reset is deleted by the ready helper, not waited for
        # (unlinking 1 GB took 0.6 s of a reset on ext4)
        return used_ready

    def discard_trash(self, env):
        self.fence.rmtree(env, self.undo_dir(env).with_name(f".trash-{self.name}"))

    def recover(self, env):
        fence = self.fence
        data = self.data_dir(fence.clone(env))
        fence.rmtree(env, self.undo_dir(env).with_name(f".trash-{self.name}"))
        swap = data.with_name(f".swap-{self.name}")
        if data.exists():
            if swap.exists() and not self.undo_dir(env).exists():  # undo cut off after its 2nd rename
                fence.replace(env, swap, self.undo_dir(env))
            return False
        if swap.exists():  # undo cut off after its first rename: put things back
            fence.replace(env, swap, data)
            return False
        if self.ready_dir(env).exists():  # reset cut off between its two renames
            fence.mkdir(env, data.parent)
            fence.replace(env, self.ready_dir(env), data)
            fence.unlink(env, self.ready_marker(env))
            return True
        if self.undo_dir(env).exists():
            fence.mkdir(env, data.parent)
            fence.replace(env, self.undo_dir(env), data)
        return False

    def has_undo(self, env):
        return self.undo_dir(env).exists()

    def undo_reset(self, env):
        fence = self.fence
        data, undo = self.data_dir(fence.clone(env)), self.undo_dir(env)
        swap = data.with_name(f".swap-{self.name}")
        fence.rmtree(env, swap)
        fence.replace(env, data, swap)
        fence.replace(env, undo, data)
        fence.replace(env, swap, undo)

    def destroy(self, env):
        fence = self.fence
        fence.clone(env)
        for path in (self.data_dir(env), self.ready_dir(env), self.ready_marker(env), self.undo_dir(env),
                     self.data_dir(env).with_name(f".tmp-{self.name}"),
                     self.ready_dir(env).with_name(f".tmp-{self.name}")):
            fence.rmtree(env, path)
        snaps = self.repro_dir / "snapshots" / env
        if snaps.exists():
            for snap in snaps.iterdir():
                fence.rmtree(env, snap / self.name)
                fence.rmtree(env, snap / f".tmp-{self.name}")

    def size(self, env, snapshot=None):
        folder = self.snapshot_dir(env, snapshot) if snapshot else self.data_dir(env)
        return tree_size(folder) if folder.exists() else 0

    def describe(self) -> dict[str, Any]:
        return {"type": self.store.type, "location": self.prod_location()}
