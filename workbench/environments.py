"""Environments as readers see them: listing, one environment's status, the context a
backend runs it in, and the sides of a diff. Nothing here changes a workspace.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import egress
from workbench.backends.base import EnvContext
from workbench.egress import Default
from workbench.errors import InvalidInput, NotFound, ProdReadOnly, ReproError
from workbench.mailbox import Mailbox
from workbench.model import EnvInfo, Side
from workbench.names import PROD, check_env_name, check_snapshot_name
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
        self._values: tuple[float, dict[str, str]] | None = None

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
        ctx = EnvContext(name=env, kind="clone", worktree=ws.worktree(env), run_dir=ws.run_dir(env),
                         services=self.clone_services(env), ports=json.loads(row["ports"]),
                         store_paths={n: s.location(env) for n, s in ws.stores.items()},
                         env_overrides=ws.spec.override_env, service_overrides=ws.spec.override_services)
        ctx.service_overrides = self._with_safe_defaults(ctx)
        return ctx

    # what a clone may reach (workbench.egress) ------------------------------------------------
    def _safe_defaults(self, ctx: EnvContext) -> tuple[dict[str, dict[str, str]], dict[str, list[Default]]]:
        """Each service's declared environment, and the safe defaults it gets in a clone: mail
        to the clone's sink, payment keys and webhooks disabled (what repro.yaml overrides
        itself is left to it), and on a fenced clone with an allow list, the egress proxy."""
        ws = self.ws
        try:
            envs = ws.backend.declared_envs(ctx)
        except ReproError:
            envs = {name: dict(svc.env) for name, svc in ctx.services.items()}
        proxy = bool(ws.spec.egress_allow) and ws.backend.egress_fence(ctx)[0]
        out = {}
        for service, env in envs.items():
            explicit = set(ws.spec.override_env) | set(ws.spec.override_services.get(service, {}).get("env", {}))
            found = egress.clone_defaults(env, explicit)
            if proxy:
                found += egress.proxy_defaults(explicit, set(envs))
            out[service] = found
        return envs, out

    def _with_safe_defaults(self, ctx: EnvContext) -> dict[str, dict[str, Any]]:
        out = {name: dict(over) for name, over in self.ws.spec.override_services.items()}
        for service, defaults in self._safe_defaults(ctx)[1].items():
            if defaults:
                over = out.setdefault(service, {})
                over["env"] = {**{d.key: d.value for d in defaults}, **(over.get("env") or {})}
        return out

    def egress_lines(self, env: str) -> list[str]:
        """What a fork says about a clone's reach: the safe defaults it got, the test keys it
        kept, whether it is fenced, and which of its settings still point outside."""
        ctx = self.context(env)
        envs, defaults = self._safe_defaults(ctx)
        effective = {}
        for service, env_ in envs.items():
            over = ctx.service_overrides.get(service, {}).get("env") or {}
            effective[service] = {**env_, **ctx.env_overrides, **over}
        fenced, what = self.ws.backend.egress_fence(ctx)
        allow = [ep for ep in map(egress.parse_allow, self.ws.spec.egress_allow) if ep is not None]
        inside = set(envs) if fenced or self.ws.spec.backend == "docker" else set()
        reach = egress.outside(effective, inside, allow)
        kept = {s: egress.kept_test_keys(e) for s, e in effective.items() if egress.kept_test_keys(e)}
        return egress.fork_lines(defaults, kept, reach, fenced, what)

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
        for name, svc in services.items():   # a clone's settings cannot lead its services out of it
            if svc.cwd and not ws.fence.owns(env, ws.worktree(env) / svc.cwd, follow=True):
                raise InvalidInput(f"{env}'s repro.yaml: services.{name}.cwd ({svc.cwd}) leads outside its worktree.",
                                   f"A clone's service runs in its own worktree: fix {path}.")
        if raw is not None:
            self._clone_specs[env] = (raw, services)
        return services

    def secret_values(self, env: str | None = None) -> dict[str, str]:
        """Every secret value the workspace holds, and where it was found: the settings of
        prod's and every clone's services (their repro.yaml), the config files and ``.env`` of
        prod and of every clone, store passwords, and the environment of the containers the
        backend has read. What the redactor masks wherever it shows. ``env`` is accepted for
        callers that name one: every environment's values are masked in every output. Kept
        for half a second: a screen asks for them for every value it shows."""
        now = time.monotonic()
        if self._values is not None and now - self._values[0] < 0.5:
            return self._values[1]
        values: dict[str, str] = {}
        for where, value in self._collect_secret_values():
            values.setdefault(value, where)
        self._values = (now, values)
        return values

    def _collect_secret_values(self) -> list[tuple[str, str]]:
        from workbench.configfiles import MAX_PARSE_BYTES, Unparsed, file_type, matched_files, parsed, read
        from workbench.secrets import tree_values

        ws = self.ws
        policy = ws.secrets
        found: list[tuple[str, str]] = []
        services = [("prod's repro.yaml", ws.spec.services)]
        roots = [(PROD, ws.root)]
        for row in ws.state.envs():
            roots.append((row["name"], ws.worktree(row["name"])))
            try:
                services.append((f"{row['name']}'s repro.yaml", self.clone_services(row["name"])))
            except ReproError:
                pass
        for where, specs in services:
            for name, svc in specs.items():
                found += [(f"{path} in {where}", value) for path, value in tree_values(
                    {"env": {**svc.env, **ws.spec.override_env}, "command": svc.command or ""}, policy,
                    f"services.{name}")]
        for name, st in ws.spec.stores.items():
            if st.password:
                found.append((f"stores.{name}.password in repro.yaml", st.password))
        patterns = [*(ws.spec.config_files or []), ".env"]
        for env, root in roots:
            for rel, path in matched_files(root, patterns).items():
                kind = file_type(rel)
                try:   # a file too big to parse quickly is masked by shape alone
                    if kind == "text" or path.stat().st_size > MAX_PARSE_BYTES[kind]:
                        continue
                except OSError:
                    continue
                try:
                    file = rel if env == PROD else f"{env}'s {rel}"
                    found += [(f"{key} in {file}", value) for key, value in tree_values(parsed(path, read(path), kind),
                                                                                        policy)]
                except Unparsed:
                    continue
        if ws.backend_made:
            found += [("a container's environment", v) for v in ws.backend.secret_values()]
        return found

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

    # captured mail -------------------------------------------------------------------------
    def mailbox(self, env: str) -> Mailbox:
        """The mail a clone's sink captured (prod has none: its mail goes where prod sends it)."""
        check_env_name(env)
        if env == PROD:
            raise NotFound("prod has no mail sink: its mail goes where prod sends it.",
                           "A clone's mail is captured: repro-tui mail CLONE")
        self.require_clone(env, "reading mail")
        from workbench.backends.edge_process import mail_folder

        return Mailbox(mail_folder(self.ws.run_dir(env)))

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
        clone = ctx.kind == "clone"
        if clone:   # a clone whose data leads to prod's bytes is refused, not compared
            for store in ws.stores.values():
                store.verify(env)
        runtime = {n: s.as_dict() for n, s in ws.backend.status(ctx).items()}
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
        return DiffSource(list(ws.spec.config_files or []), stores, ws.redactor.policy, redact=ws.redactor.text,
                          describe=describe, resolve=self.side)


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
