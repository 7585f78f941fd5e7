"""A Docker clone's data volumes: their snapshots, and the undo of a reset.

The data a clone holds in named volumes (all but PostgreSQL's, whose store snapshots
databases inside the server) is copied into labelled snapshot volumes while the services
that write it are paused, copied back on a reset, and the volumes a reset replaces are
kept for its undo. Volumes cannot be renamed: every move is a copy by a helper container.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from workbench.backends.base import EnvContext, Progress
from workbench.docker_engine import LABEL_MOUNT, LABEL_SERVICE, LABEL_SOURCE, LABEL_WORKSPACE, engine_call
from workbench.errors import BackendError, NotFound, ProdReadOnly

if TYPE_CHECKING:
    from workbench.backends.docker import DockerBackend


class CloneVolumes:
    def __init__(self, backend: DockerBackend) -> None:
        self.backend = backend
        self.engine = backend.engine

    # --- snapshots of the clone's other volumes -------------------------------------------
    def data_volumes(self, env: str, include_pg: bool = False) -> list[Any]:
        vols = self.engine.volumes(env, role="data")
        if include_pg:
            return vols
        ctx = self.backend._ctx(env)
        try:
            pg = self.backend._pg_mounts(self.backend.service_settings(ctx))
        except (NotFound, BackendError):
            pg = set()
        return [v for v in vols if (v.attrs["Labels"].get(LABEL_SERVICE), v.attrs["Labels"].get(LABEL_MOUNT)) not in pg]

    def snapshot_volume_name(self, env: str, snapshot: str, vol: str) -> str:
        return self.engine.name(env, "snap", snapshot, vol.rsplit("-v-", 1)[-1] + "-" + vol[-6:])

    def snapshot_volumes(self, ctx: EnvContext, snapshot: str, progress: Progress | None = None) -> None:
        """Copy every data volume of the clone (but PostgreSQL's, which its store snapshots)
        into labelled snapshot volumes, as they are (the caller holds the writers still)."""
        for v in self.data_volumes(ctx.name):
            labels = dict(v.attrs["Labels"])
            svc = labels.get(LABEL_SERVICE, "")
            name = self.snapshot_volume_name(ctx.name, snapshot, v.name)
            snap_labels = self.engine.labels(ctx.name, svc, "snapshot", snapshot=snapshot)
            snap_labels[LABEL_SOURCE] = v.name
            self.engine.create_volume(name, snap_labels)
            if progress:
                progress(f"snapshot of {svc}:{labels.get(LABEL_MOUNT)}")
            self.engine.copy_volume(ctx.name, self.helper_image(ctx, svc), v.name, name, "volume snapshot", svc)

    def reset_volumes(self, ctx: EnvContext, snapshot: str, progress: Progress | None = None) -> None:
        for v in self.engine.volumes(ctx.name, role="snapshot", snapshot=snapshot):
            target = v.attrs["Labels"].get(LABEL_SOURCE)
            svc = v.attrs["Labels"].get(LABEL_SERVICE, "")
            if progress:
                progress(f"restoring {target}")
            self.engine.copy_volume(ctx.name, self.helper_image(ctx, svc), v.name, target, "volume reset", svc)

    def delete_volume_snapshot(self, ctx: EnvContext, snapshot: str) -> None:
        for v in self.engine.volumes(ctx.name, role="snapshot", snapshot=snapshot):
            self.engine.remove_volume(v.name)

    # --- undo of a reset: the volumes a reset replaced are kept, as the stores keep theirs ----
    def _undo_volume_name(self, env: str, vol: str, role: str = "undo") -> str:
        return self.engine.name(env, role, vol.rsplit("-v-", 1)[-1] + "-" + vol[-6:])

    def drop_undo_data(self, ctx: EnvContext, swap_only: bool = False) -> None:
        if ctx.is_prod:
            raise ProdReadOnly("removing volumes")
        for role in ("undo-swap",) if swap_only else ("undo", "undo-swap"):
            for v in self.engine.volumes(ctx.name, role=role):
                self.engine.remove_volume(v.name)

    def keep_undo_data(self, ctx: EnvContext, snapshot: str, progress: Progress | None = None) -> None:
        """Before a reset puts a snapshot's volumes back: copy the volumes it will replace
        into undo volumes (the previous reset's are dropped)."""
        if ctx.is_prod:
            raise ProdReadOnly("a reset")
        self.backend.remember(ctx)
        self.drop_undo_data(ctx)
        snaps = self.engine.volumes(ctx.name, role="snapshot", snapshot=snapshot)
        if not snaps:
            return
        targets = {str(v.attrs["Labels"].get(LABEL_SOURCE)): v.attrs["Labels"].get(LABEL_SERVICE, "") for v in snaps}
        with self.held_still(ctx, set(targets), f"the reset to {snapshot}"):
            for target, svc in targets.items():
                undo = self._undo_volume_name(ctx.name, target)
                labels = self.engine.labels(ctx.name, svc, "undo")
                labels[LABEL_SOURCE] = target
                self.engine.create_volume(undo, labels)
                if progress:
                    progress(f"keeping {target} for an undo")
                self.engine.copy_volume(ctx.name, self.helper_image(ctx, svc), target, undo, "volume undo copy", svc)

    def has_undo_data(self, ctx: EnvContext) -> bool | None:
        """None when the clone has no data volume of its own to undo; else whether the last
        reset kept the volumes it replaced."""
        if not self.data_volumes(ctx.name):
            return None
        return bool(self.engine.volumes(ctx.name, role="undo"))

    def undo_data(self, ctx: EnvContext, done: str | None = None, note: Callable[[str], None] | None = None,
                  progress: Progress | None = None) -> None:
        """Swap each volume with its undo copy (three copies through a swap volume: volumes
        cannot be renamed). ``note`` records each stage; ``done`` is the last stage a cut-off
        undo recorded, so that recovery finishes it without copying a half-written volume."""
        if ctx.is_prod:
            raise ProdReadOnly("undoing a reset")
        self.backend.remember(ctx)
        undos = self.engine.volumes(ctx.name, role="undo")
        if not undos:
            return
        stages = ["saved", "restored", "swapped"]
        start = stages.index(done) + 1 if done in stages else 0
        mark = note or (lambda _s: None)
        pairs = []
        for u in undos:
            labels = u.attrs["Labels"]
            target, svc = str(labels.get(LABEL_SOURCE)), labels.get(LABEL_SERVICE, "")
            pairs.append((u.name, target, svc, self._undo_volume_name(ctx.name, target, "undo-swap"),
                          self.helper_image(ctx, svc)))
        with self.held_still(ctx, {p[1] for p in pairs}, "the undo of the reset"):
            if start <= 0:
                for _undo, target, svc, swap, image in pairs:
                    self.engine.create_volume(swap, self.engine.labels(ctx.name, svc, "undo-swap"))
                    self.engine.copy_volume(ctx.name, image, target, swap, "volume undo", svc)
                mark("saved")
            if start <= 1:
                for undo, target, svc, _swap, image in pairs:
                    if progress:
                        progress(f"restoring {target}")
                    self.engine.copy_volume(ctx.name, image, undo, target, "volume undo", svc)
                mark("restored")
            if start <= 2:
                for undo, _target, svc, swap, image in pairs:
                    self.engine.copy_volume(ctx.name, image, swap, undo, "volume undo", svc)
                mark("swapped")
            for _undo, _target, _svc, swap, _image in pairs:
                self.engine.remove_volume(swap)

    # --- what the engine asks of backend-held data ------------------------------------------
    def snapshot_data(self, ctx: EnvContext, snapshot: str, progress: Progress | None = None) -> None:
        """The clone's data volumes into snapshot volumes. The clone's services that use
        them are paused for the copy (a consistent copy; never prod's), and a service that
        died meanwhile fails the snapshot: its volume may have been copied mid-write."""
        if ctx.is_prod:
            raise ProdReadOnly("a snapshot")
        self.backend.remember(ctx)
        vols = self.data_volumes(ctx.name)
        if not vols:
            return
        with self.held_still(ctx, {v.name for v in vols}, f"the snapshot {snapshot}"):
            self.snapshot_volumes(ctx, snapshot, progress)

    def reset_data(self, ctx: EnvContext, snapshot: str, progress: Progress | None = None) -> None:
        """Copy a snapshot's volumes back. Their services are stopped by ``stop_for_reset``;
        one still running (a database server with a second volume) is paused meanwhile."""
        if ctx.is_prod:
            raise ProdReadOnly("a reset")
        self.backend.remember(ctx)
        snaps = self.engine.volumes(ctx.name, role="snapshot", snapshot=snapshot)
        if not snaps:
            return
        targets = {str(v.attrs["Labels"].get(LABEL_SOURCE)) for v in snaps}
        with self.held_still(ctx, targets, f"the reset to {snapshot}"):
            self.reset_volumes(ctx, snapshot, progress)

    def delete_snapshot_data(self, ctx: EnvContext, snapshot: str) -> None:
        if ctx.is_prod:
            return
        self.delete_volume_snapshot(ctx, snapshot)

    @contextmanager
    def held_still(self, ctx: EnvContext, volumes: set[str], what: str) -> Iterator[None]:
        """Pause the clone's running containers that mount one of ``volumes`` for the time
        of the block; fail if one of them died meanwhile."""
        users = []
        for c in self.engine.containers(ctx.name, role="service"):
            mounted = {m.get("Name") for m in c.attrs.get("Mounts") or []}
            if c.status == "running" and mounted & volumes:
                users.append(c)
        paused = []
        try:
            for c in users:
                if c.labels.get(LABEL_WORKSPACE) != self.backend.workspace_id:
                    raise ProdReadOnly(f"pausing {c.name}")
                with engine_call(f"pausing {c.name} for {what}"):
                    c.pause()
                paused.append(c)
            yield
        except BaseException:
            self._unpause(paused, quiet=True)
            raise
        died = self._unpause(paused)
        if died:
            svc, code = died[0]
            raise BackendError(f"{ctx.name}/{svc} stopped during {what} (exit code {code}): the copy of its data "
                               "may be half written, so it was not kept.",
                               f"See why: repro-tui logs {ctx.name} {svc}; start it again: repro-tui start {ctx.name}")

    def _unpause(self, paused: list[Any], quiet: bool = False) -> list[tuple[str, Any]]:
        """Unpause; returns (service, exit code) of the containers that are no longer
        running. An engine that fails here is raised, unless ``quiet`` (an error is already
        on its way)."""
        died = []
        for c in paused:
            try:
                with engine_call(f"unpausing {c.name}"):
                    c.reload()
                    if c.status == "paused":
                        try:
                            c.unpause()
                        except Exception:  # noqa: BLE001 - it died in between: seen below
                            pass
                        c.reload()
            except BackendError:
                if quiet:
                    continue
                raise
            if c.status != "running":
                died.append((c.labels.get(LABEL_SERVICE, c.name), (c.attrs.get("State") or {}).get("ExitCode")))
        return died

    def helper_image(self, ctx: EnvContext, svc: str) -> str:
        settings = self.backend.service_settings(ctx)
        if svc in settings:
            return settings[svc].image
        return next(iter(settings.values())).image
