"""Environments as readers see them: listing, one environment's status, the context a
backend runs it in, and the sides of a diff. Nothing here changes a workspace.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.backends.base import EnvContext
from workbench.errors import InvalidInput, NotFound, ProdReadOnly, ReproError
from workbench.model import EnvInfo, Side
from workbench.names import PROD, check_env_name, check_snapshot_name
from workbench.secrets import secret_values
from workbench.spec import SPEC_FILE, ServiceSpec, load_spec

if TYPE_CHECKING:
    import sqlite3

    from workbench.diff.source import DiffSource
    from workbench.workspace import Workspace


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``b1`` -> ("b1", None); ``b1@s2`` -> ("b1", "s2")."""
    env, _, snap = ref.partition("@")
    check_env_name(env)
    if snap:
        check_snapshot_name(snap)
    elif ref.endswith("@"):
        raise InvalidInput(f"{ref!r}: a snapshot name is missing after '@'.", "Write CLONE@SNAPSHOT, e.g. b1@forked.")
    return env, snap or None


class Environments:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._clone_specs: dict[str, tuple[bytes, dict[str, ServiceSpec]]] = {}  # env -> (its repro.yaml, services)

    # lookups --------------------------------------------------------------------------------
    def require_clone(self, env: str, what: str) -> sqlite3.Row:
        """The clone's row; prod is refused (read-only), an unknown name is NotFound."""
        check_env_name(env)
        if env == PROD:
            raise ProdReadOnly(what)
        row = self.ws.state.env(env)
        if row is None:
            raise NotFound(f"no environment named {env!r}.", self.names_hint())
        return row

    def require_snapshot(self, env: str, snapshot: str) -> None:
        if self.ws.state.snapshot(env, snapshot) is None:
            raise NotFound(f"{env} has no snapshot named {snapshot!r}.", f"See them: repro-tui snapshots {env}")

    def names_hint(self) -> str:
        names = [r["name"] for r in self.ws.state.envs()]
        return f"Environments: prod{', ' if names else ''}{', '.join(names)}. See: repro-tui list"

    def check_service_control(self, env: str, what: str) -> None:
        """Starting and stopping services: clones, and prod only on the local backend (its demo)."""
        check_env_name(env)
        if env == PROD:
            if self.ws.spec.backend != "local":
                raise ProdReadOnly(f"{what} of prod's containers")
            return
        self.require_clone(env, what)

    # the context a backend runs an environment in ---------------------------------------------
    def context(self, env: str) -> EnvContext:
        ws = self.ws
        if env == PROD:
            ports = {n: s.port for n, s in ws.spec.services.items() if s.port}
            return EnvContext(name=PROD, kind="prod", worktree=ws.root, run_dir=ws.run_dir(PROD),
                              services=ws.spec.services, ports=ports,
                              store_paths={n: s.prod_location() for n, s in ws.stores.items()})
        row = ws.state.env(env)
        if row is None:
            raise NotFound(f"no environment named {env!r}.", self.names_hint())
        return EnvContext(name=env, kind="clone", worktree=ws.worktree(env), run_dir=ws.run_dir(env),
                          services=self.clone_services(env), ports=json.loads(row["ports"]),
                          store_paths={n: s.location(env) for n, s in ws.stores.items()},
                          env_overrides=ws.spec.override_env, service_overrides=ws.spec.override_services)

    def clone_services(self, env: str) -> dict[str, ServiceSpec]:
        """A clone's services come from the repro.yaml in its worktree (so a fix to a
        service setting can be tried and promoted); backend and stores from the root's."""
        ws = self.ws
        path = ws.worktree(env) / SPEC_FILE
        if not path.exists():
            return ws.spec.services
        raw = read_bytes(path)
        # parsing YAML costs ~5 ms: a clone whose repro.yaml is prod's (the usual case) is not
        # parsed again, nor one that has not changed since (the screen lists every second)
        if raw is not None and raw == ws.spec_bytes:
            return ws.spec.services
        cached = self._clone_specs.get(env)
        if raw is not None and cached and cached[0] == raw:
            return cached[1]
        try:
            services = load_spec(ws.worktree(env), path).services
        except InvalidInput as exc:
            raise InvalidInput(f"the clone's {exc.message}", "Fix the repro.yaml in the clone's worktree.") from None
        if raw is not None:
            self._clone_specs[env] = (raw, services)
        return services

    def secret_values(self, env: str | None) -> list[str]:
        """The secret values the workspace declares, and those of the clone ``env``'s own
        repro.yaml (a changed secret is declared only there): what the redactor masks."""
        ws = self.ws
        values: list[str] = []
        services = list(ws.spec.services.values())
        if env and env != PROD and ws.worktree(env).exists():
            try:
                services += self.clone_services(env).values()
            except ReproError:
                pass
        for svc in services:
            values += secret_values({**svc.env, **ws.spec.override_env}, ws.secrets)
        for st in ws.spec.stores.values():
            if st.password:
                values.append(st.password)
        return values

    # listing and status ----------------------------------------------------------------------
    def list(self) -> list[EnvInfo]:
        out = [self._info(PROD, None, detail=False)]
        out += [self._info(row["name"], row, detail=False) for row in self.ws.state.envs()]
        return out

    def status(self, env: str) -> EnvInfo:
        check_env_name(env)
        if env == PROD:
            return self._info(PROD, None, detail=True)
        row = self.ws.state.env(env)
        if row is None:
            raise NotFound(f"no environment named {env!r}.", self.names_hint())
        return self._info(env, row, detail=True)

    def _info(self, env: str, row: Any, detail: bool) -> EnvInfo:
        ws = self.ws
        if env == PROD:
            info = EnvInfo(name=PROD, kind="prod", state="", branch=ws.spec.prod_branch, worktree=ws.root)
        else:
            info = EnvInfo(name=env, kind="clone", state="", branch=row["branch"], worktree=ws.worktree(env),
                           created_at=row["created_at"], source=row["source"], forked_commit=row["forked_commit"],
                           last_reset=row["last_reset"])
        try:
            statuses = ws.backend.status(self.context(env))
            info.services = {n: s.as_dict() for n, s in statuses.items()}
        except ReproError:
            statuses = {}
            info.services = {}
            info.state = "broken"
        info.stores = {n: {"type": s.store.type, "location": s.prod_location() if env == PROD else s.location(env)}
                       for n, s in ws.stores.items()}
        if env != PROD:
            info.snapshots = ws.state.snapshots(env)
            for snap in info.snapshots:
                snap.ready = all(st.ready_for(env) == snap.id for st in ws.stores.values()) if ws.stores else True
                if detail:
                    snap.size = sum(st.size(env, snap.name) for st in ws.stores.values())
            info.can_undo_reset = bool(ws.stores) and all(s.has_undo(env) for s in ws.stores.values())
        if row is not None and row["status"] != "ok":
            info.state = "pending"
        elif not info.state:
            info.state = _overall({s.state for s in statuses.values()})
        self._people_and_restart(info, row, statuses)
        return info

    def _people_and_restart(self, info: EnvInfo, row: Any, statuses: dict[str, Any]) -> None:
        """Who owns a clone and who reset it last; the files changed since its services started."""
        from workbench.owners import last_swap, who
        from workbench.staleness import changed_since_start

        if row is not None:
            info.owner = row["owner"]
            swap = last_swap(self.ws.state, info.name)
            if swap is not None:
                info.last_reset_by, info.last_reset_at = who(swap), swap.finished_at or swap.started_at
        running = [s.started_at for s in statuses.values() if s.state == "running"]
        info.restart_needed = changed_since_start(info.worktree, list(self.ws.spec.config_files or []), running)

    # what a service says, and its environment for a shell -------------------------------
    def logs(self, env: str, service: str | None = None, follow: bool = False, lines: int = 200) -> Iterator[str]:
        check_env_name(env)
        ctx = self.context(env)
        backend = self.ws.backend
        names = backend.service_names(ctx)
        if not names:
            raise NotFound("this workspace declares no service, so there are no logs.")
        if service is None:
            service = names[0]
        elif service not in names:
            raise NotFound(f"no service named {service!r} in {env}.", f"Services: {', '.join(names)}")
        return self.ws.redactor.lines(backend.logs(ctx, service, follow, lines), env)

    def shell_env(self, env: str) -> dict[str, str]:
        """What ``repro-tui shell`` exports: the clone's paths, ports and service settings."""
        check_env_name(env)
        ctx = self.context(env)
        ws = self.ws
        out = {"REPRO_ENV": env, "REPRO_WORKTREE": str(ctx.worktree), "REPRO_WORKSPACE": str(ws.root)}
        for name, path in ctx.store_paths.items():
            out[f"REPRO_STORE_{name.upper().replace('-', '_')}"] = path
        for name, port in ctx.ports.items():
            out[f"REPRO_PORT_{name.upper().replace('-', '_')}"] = str(port)
        for svc in ctx.services.values():
            out.update(ws.backend.service_env(ctx, svc))
        return out

    # diff sides ---------------------------------------------------------------------------------
    def side(self, ref: str) -> Side:
        ws = self.ws
        env, snap = parse_ref(ref)
        if env != PROD and ws.state.env(env) is None:
            raise NotFound(f"no environment named {env!r}.", self.names_hint())
        if snap and env == PROD:
            raise InvalidInput("prod has no snapshots.", "Compare prod, a clone, or CLONE@SNAPSHOT.")
        ctx = self.context(env)
        if snap:
            tree = ws.state.snapshot_tree(env, snap)
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
                        ports=dict(ctx.ports),
                        store_locations={n: s.snapshot_location(env, snap) for n, s in ws.stores.items()},
                        runtime=None)
        runtime = {n: s.as_dict() for n, s in ws.backend.status(ctx).items()}
        clone = ctx.kind == "clone"
        return Side(ref=ref, env=env, snapshot=None, kind=ctx.kind, config_root=ctx.worktree,
                    services=ctx.services, env_overrides=ctx.env_overrides if clone else {},
                    service_overrides=ctx.service_overrides if clone else {},
                    ports=dict(ctx.ports), store_locations=dict(ctx.store_paths), runtime=runtime)

    def _tree_folder(self, tree: str) -> Path:
        """A snapshot's files, extracted once into a cache (read-only use)."""
        folder = self.ws.repro_dir / "cache" / "trees" / tree
        if not folder.exists():
            tmp = folder.with_name(f".tmp-{tree}-{os.getpid()}")
            tmp.mkdir(parents=True, exist_ok=True)
            self.ws.repo().extract_tree(tree, tmp)
            try:
                os.replace(tmp, folder)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
        return folder

    def diff_source(self) -> DiffSource:
        """What the diff reads of this workspace, typed: config files, store views, secrets,
        how to describe running services and how to read a side again."""
        from workbench.diff.source import DiffSource, StoreView, scrubbed_columns

        ws = self.ws
        stores: dict[str, StoreView] = {}
        for name, spec in ws.spec.stores.items():
            store = ws.stores[name]
            server = spec.type == "postgres"
            stores[name] = StoreView(spec.type, scrubbed_columns(ws.spec, name),
                                     endpoint=getattr(store, "endpoint", None) if server else None,
                                     fingerprint=store.fingerprint if server else None)
        describe = None
        if ws.spec.backend == "docker":   # the containers' inspect data, normalised by the backend
            def describe(side: Side) -> dict[str, dict[str, Any]]:
                return ws.backend.describe(self.context(side.env))
        return DiffSource(list(ws.spec.config_files or []), stores, ws.redactor.policy, describe=describe,
                          resolve=self.side)


def _overall(states: set[str]) -> str:
    if not states:
        return "ready"
    if states == {"running"}:
        return "running"
    if "crashed" in states:
        return "crashed"
    if states == {"stopped"}:
        return "stopped"
    return "partial"


def read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
