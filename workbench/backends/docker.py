"""The docker backend: a clone is a set of containers on a bridge network of its own.

Prod's services are either listed in repro.yaml (a compose-like subset) or adopted from
a running compose project (``prod: {compose_project: NAME}``), whose settings are read
from the engine. For every service a clone gets a container made from the same image and
settings, plus the clone's overrides; named volumes are copied into the clone's own
volumes; ports are published on free ports of 127.0.0.1; the services keep their names
on the clone's network, so they find each other as in prod.

Everything repro-tui makes carries the labels ``repro.workspace``, ``repro.env`` and
``repro.service`` (and ``repro.role``), so that it can always be found and removed again,
and two checkouts on one engine never touch each other's clones. Prod's
``com.docker.compose.*`` labels are never copied. Prod's containers are only inspected
and, for copies, exec'd into for reading; pausing one during a volume copy is an opt-in
(``docker: {pause_prod_for_copy: true}``).

Longer than most modules (about 860 lines), on purpose: it is the one object that knows
how a clone's containers are named, labelled, made, started, checked and removed, and each
of those uses the others. The clone's data volumes (snapshots, the undo of a reset) live in
``docker_volumes``, the settings of a container in ``docker_settings``, the engine itself in
``workbench.docker_engine``.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from workbench.backends import edge_process
from workbench.backends.base import Backend, EnvContext, Progress, ServiceStatus
from workbench.backends.docker_settings import (
    Mount,
    Settings,
    describe_container,
    settings_from_inspect,
    settings_from_spec,
)
from workbench.backends.docker_volumes import CloneVolumes
from workbench.backends.local import free_port
from workbench.docker_engine import (
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    ENGINE_ERRORS,
    LABEL_CONFIG,
    LABEL_ENV,
    LABEL_MOUNT,
    LABEL_SERVICE,
    LABEL_SOURCE,
    LABEL_WORKSPACE,
    Engine,
    engine_call,
    is_remote,
    slug,
    wait_until,
)
from workbench.errors import BackendError, InvalidInput, NotFound, ProdReadOnly
from workbench.fence import Fence
from workbench.names import PROD
from workbench.psql import PgPlace
from workbench.redact import Redactor
from workbench.secrets import SecretPolicy, secret_values
from workbench.spec import Spec

STOP_TIMEOUT = 10
START_TIMEOUT = 60.0


class DockerBackend(Backend):
    name = "docker"

    def __init__(self, spec: Spec, workspace_id: str, state_dir: Path, policy: SecretPolicy | None = None,
                 fence: Fence | None = None, redactor: Redactor | None = None) -> None:
        super().__init__(spec, workspace_id, state_dir, policy, fence, redactor)
        self.engine = Engine(workspace_id)
        self.volumes = CloneVolumes(self)
        self._prod_cache: dict[str, Any] | None = None

    # --- names ------------------------------------------------------------------------
    def container_name(self, env: str, service: str) -> str:
        return self.engine.name(env, service)

    def network_name(self, env: str) -> str:
        return self.engine.name(env, "net")

    def volume_name(self, env: str, service: str, target: str) -> str:
        return self.engine.name(env, service, "v", slug(target, 60))

    # --- prod ---------------------------------------------------------------------------
    def prod_containers(self, refresh: bool = False) -> dict[str, Any]:
        """prod's container of every service (only services that have one)."""
        if self._prod_cache is not None and not refresh:
            return self._prod_cache
        found: dict[str, Any] = {}
        client = self.engine.client
        with engine_call("looking for prod's containers"):
            if self.spec.compose_project:
                listed = client.containers.list(all=True, filters={"label": f"{COMPOSE_PROJECT}="
                                                                             f"{self.spec.compose_project}"})
                for c in sorted(listed, key=lambda c: (c.status != "running", c.name)):
                    svc = c.labels.get(COMPOSE_SERVICE)
                    if svc and svc not in found and c.labels.get("com.docker.compose.oneoff", "False") != "True":
                        found[svc] = c
            for svc in self.spec.services:
                if svc in found:
                    continue
                for candidate in (svc, f"{self.spec.name}-{svc}", f"{self.spec.name}_{svc}_1",
                                  f"{self.spec.name}-{svc}-1"):
                    c = self.engine.container(candidate)
                    if c is not None and c.labels.get(LABEL_WORKSPACE) is None:
                        found[svc] = c
                        break
        self._prod_cache = found
        return found

    def prod_container(self, service: str) -> Any:
        c = self.prod_containers().get(service)
        if c is None:
            raise NotFound(f"prod has no container for the service {service!r}.", self._prod_hint())
        return c

    def _prod_hint(self) -> str:
        if self.spec.compose_project:
            return (f"Start prod first (docker-compose -p {self.spec.compose_project} up -d), "
                    f"and check the project's name: docker ps --filter label={COMPOSE_PROJECT}")
        return ("prod's container of a service is looked up by the names SERVICE, NAME-SERVICE, NAME_SERVICE_1 "
                "or NAME-SERVICE-1 (NAME: the workspace's name). Start prod first: docker ps -a")

    def _image_env(self, image: str) -> list[str]:
        with engine_call(f"inspecting the image {image}"):
            try:
                return self.engine.client.images.get(image).attrs.get("Config", {}).get("Env") or []
            except Exception:  # noqa: BLE001 - an image removed since: keep the whole environment
                return []

    # --- settings of a clone's services ----------------------------------------------
    def _plan_file(self, ctx: EnvContext) -> Path:
        return ctx.run_dir / "docker.json"

    def service_settings(self, ctx: EnvContext) -> dict[str, Settings]:
        """Settings of every service: listed ones from the environment's repro.yaml, adopted
        ones as read from prod when the clone was forked (so a clone does not need prod up)."""
        out: dict[str, Settings] = {}
        for name, svc in ctx.services.items():
            out[name] = settings_from_spec(svc)
        if self.spec.compose_project:
            adopted = self._adopted(ctx)
            for name, st in adopted.items():
                out.setdefault(name, st)
        for st_spec in self.spec.stores.values():  # a database kept in the container's own layer gets a volume
            if st_spec.type == "postgres" and st_spec.service in out:
                st = out[st_spec.service]
                if st.mount_holding(st.pgdata()) is None:
                    st.mounts.append(Mount("volume", st.pgdata()))
        return out

    def _adopted(self, ctx: EnvContext) -> dict[str, Settings]:
        plan = self._plan_file(ctx)
        if not ctx.is_prod and plan.exists():
            data = json.loads(plan.read_text())
            return {n: Settings.from_dict(s) for n, s in data.get("adopted", {}).items()}
        out = {}
        for name, c in self.prod_containers().items():
            if name in ctx.services:
                continue
            out[name] = settings_from_inspect(c.attrs, self._image_env(c.attrs["Config"]["Image"]))
        if not ctx.is_prod:
            plan.parent.mkdir(parents=True, exist_ok=True)
            tmp = plan.with_suffix(".tmp")
            tmp.write_text(json.dumps({"adopted": {n: s.as_dict() for n, s in out.items()}}, indent=1))
            os.replace(tmp, plan)
        if not out and not ctx.services:
            raise NotFound(f"the compose project {self.spec.compose_project!r} has no container.", self._prod_hint())
        return out

    def pg_place(self, env: str, service: str) -> PgPlace:
        """Where a PostgreSQL service keeps its data: image, data directory, mount and volume."""
        ctx = self._ctx(env)
        settings = self.service_settings(ctx)
        if service not in settings:
            raise NotFound(f"no service named {service!r} for the PostgreSQL store.",
                           f"Services: {', '.join(settings) or 'none'}")
        st = settings[service]
        mount = st.mount_holding(st.pgdata())
        assert mount is not None  # service_settings adds one
        return PgPlace(image=st.image, pgdata=st.pgdata(), target=mount.target,
                       volume=self.volume_name(env, service, mount.target), env=dict(st.env))

    _contexts: dict[str, EnvContext]

    def remember(self, ctx: EnvContext) -> None:
        """Keep the context of an environment for the stores that name it only by name."""
        if not hasattr(self, "_contexts"):
            self._contexts = {}
        self._contexts[ctx.name] = ctx

    def _ctx(self, env: str) -> EnvContext:
        ctx = getattr(self, "_contexts", {}).get(env)
        if ctx is not None:
            return ctx
        run_dir = self.state_dir / "run" / env
        worktree = self.spec.root if env == PROD else self.state_dir / "envs" / env
        return EnvContext(name=env, kind="prod" if env == PROD else "clone", worktree=worktree, run_dir=run_dir,
                          services=self.spec.services)

    def _pg_mounts(self, settings: dict[str, Settings]) -> set[tuple[str, str]]:
        """(service, mount point) of every volume a PostgreSQL store fills itself."""
        out = set()
        for st_spec in self.spec.stores.values():
            if st_spec.type == "postgres" and st_spec.service in settings:
                st = settings[st_spec.service]
                m = st.mount_holding(st.pgdata())
                if m is not None:
                    out.add((st_spec.service, m.target))
        return out

    # --- ports -------------------------------------------------------------------------
    def allocate_ports(self, ctx: EnvContext, avoid: set[int] | None = None) -> dict[str, int]:
        self.remember(ctx)
        used = set(avoid or ())
        out = {}
        for name, st in self.service_settings(ctx).items():
            if st.ports:
                out[name] = free_port(used)
                used.add(out[name])
        return out

    # --- create: network and volumes ---------------------------------------------------
    def create(self, ctx: EnvContext, progress: Progress | None = None,
               source: str | None = None, source_snapshot: str | None = None) -> None:
        if ctx.is_prod:
            raise ProdReadOnly("making containers")
        self.remember(ctx)
        say = progress or (lambda _t: None)
        settings = self.service_settings(ctx)
        source_env = source
        self._network(ctx)
        prod = self.prod_containers()
        pg = self._pg_mounts(settings)
        bind_mode = self.spec.docker.get("bind_mounts", "copy")
        for svc, st in settings.items():
            prod_mounts = {m["Destination"]: m for m in (prod[svc].attrs.get("Mounts") or [])} if svc in prod else {}
            for m in st.mounts:
                if m.kind == "tmpfs":
                    continue
                if m.kind == "bind" and self._inside_workspace(m.source):
                    if is_remote():
                        self._data_volume(ctx, svc, m, source=m.source)
                    continue
                if m.kind == "bind" and bind_mode == "share-readonly":
                    say(f"warning: {svc} shares {m.source} with prod, read-only")
                    continue
                vol = self._data_volume(ctx, svc, m, source=self._prod_source(m, prod_mounts))
                if (svc, m.target) in pg:
                    continue  # the PostgreSQL store fills it, online and scrubbed
                src = prod_mounts.get(m.target)
                if src is None:
                    continue
                source = src.get("Name") if src.get("Type") == "volume" else src.get("Source")
                if not source:
                    continue
                if source_env is not None and self._copy_from_clone(ctx, svc, m.target, vol, source_env,
                                                                    source_snapshot, say):
                    continue
                say(f"copying {svc}:{m.target}")
                self._copy_from_prod(ctx, svc, prod[svc], source, vol)

    def _copy_from_clone(self, ctx: EnvContext, svc: str, target: str, dest: str, source: str,
                         snapshot: str | None, say: Progress) -> bool:
        """A fork of a clone takes the clone's volume (or its snapshot's), not prod's; False
        when the source has no such volume (a mount added since: then it comes from prod)."""
        live = self.volume_name(source, svc, target)
        name = self.volumes.snapshot_volume_name(source, snapshot, live) if snapshot else live
        role = "snapshot" if snapshot else "data"
        found = [v for v in self.engine.volumes(source, role=role) if v.name == name]
        if not found:
            return False
        what = f"{source}@{snapshot}" if snapshot else source
        say(f"copying {svc}:{target} from {what}")
        image = self.volumes.helper_image(ctx, svc)
        if snapshot:  # a snapshot volume is never written: copied as it is
            self.engine.copy_volume(ctx.name, image, name, dest, f"copy of {what}'s {svc}:{target}", svc)
        else:  # the source clone's writers are held still for a consistent copy
            with self.volumes.held_still(self._ctx(source), {name}, f"the fork of {source}"):
                self.engine.copy_volume(ctx.name, image, name, dest, f"copy of {what}'s {svc}:{target}", svc)
        return True

    def _network(self, ctx: EnvContext) -> Any:
        name = self.network_name(ctx.name)
        with engine_call(f"creating the network {name}"):
            nets = self.engine.client.networks.list(names=[name])
            for n in nets:
                if n.name == name:
                    return n
            return self.engine.client.networks.create(name, driver="bridge", internal=self.fenced(),
                                                      labels=self.engine.labels(ctx.name, "", "network"))

    # --- what a clone may reach: an internal network, the edge beside it --------------------
    def fenced(self) -> bool:
        """A clone's network is internal (no way out but the host's edge process) when the
        engine runs on this machine: the edge must reach the containers, and they it."""
        return not is_remote()

    def egress_fence(self, ctx: EnvContext) -> tuple[bool, str]:
        if not self.fenced():
            return False, ("the engine is remote (DOCKER_HOST): the clone's network is an ordinary bridge, and its "
                           "mail sink runs on this machine, out of its containers' reach")
        allow = f", and {len(self.spec.egress_allow)} allowed host(s) through its egress proxy" \
            if self.spec.egress_allow else ""
        return True, (f"the containers of {ctx.name} reach each other, their mail sink{allow}, and nothing else "
                      "(the engine's host excepted)")

    def declared_envs(self, ctx: EnvContext) -> dict[str, dict[str, str]]:
        return {name: dict(st.env) for name, st in self.service_settings(ctx).items()}

    @staticmethod
    def _gateway(net: Any) -> str:
        for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
            if cfg.get("Gateway"):
                return str(cfg["Gateway"]).split("/")[0]
        raise BackendError(f"Docker: the network {net.name} has no gateway address for the mail sink.",
                           f"Remove it (docker network rm {net.name}) and start the clone again.")

    def _start_edge(self, ctx: EnvContext, net: Any) -> None:
        """The clone's mail sink (and egress proxy) on its network's gateway, before its containers."""
        with engine_call(f"inspecting the network {net.name}"):
            net.reload()
        host = self._gateway(net) if self.fenced() else "127.0.0.1"
        edge_process.start(ctx.run_dir, ctx.name, edge_process.plan(
            ctx.run_dir, host, set(ctx.ports.values()),
            allow=self.spec.egress_allow if net.attrs.get("Internal") else None))

    def _forward_ports(self, ctx: EnvContext, net: Any, settings: dict[str, Settings]) -> None:
        """An internal network publishes no port: 127.0.0.1:PORT of each service is forwarded
        to its container by the host's edge (made again at every start: addresses change)."""
        if not net.attrs.get("Internal"):
            return
        forwards = []
        for svc, st in settings.items():
            port = ctx.ports.get(svc)
            if not port or not st.ports:
                continue
            c = self.engine.container(self.container_name(ctx.name, svc))
            if c is None or c.status != "running":
                continue
            ip = ((c.attrs.get("NetworkSettings") or {}).get("Networks") or {}).get(net.name, {}).get("IPAddress")
            if ip:
                forwards.append({"listen": ["127.0.0.1", port], "target": [ip, int(st.ports[0].split("/")[0])]})
        if forwards:
            edge_process.start(ctx.run_dir, ctx.name, {"forwards": forwards}, edge_process.PORTS)
        else:
            edge_process.stop(ctx.run_dir, edge_process.PORTS)

    def _prod_source(self, m: Mount, prod_mounts: dict[str, Any]) -> str:
        src = prod_mounts.get(m.target)
        if src:
            return str(src.get("Name") or src.get("Source") or "")
        return m.source

    def _data_volume(self, ctx: EnvContext, svc: str, m: Mount, source: str) -> str:
        name = self.volume_name(ctx.name, svc, m.target)
        labels = self.engine.labels(ctx.name, svc, "data")
        labels[LABEL_MOUNT] = m.target
        labels[LABEL_SOURCE] = source[:200]
        self.engine.create_volume(name, labels)
        return name

    def _copy_from_prod(self, ctx: EnvContext, svc: str, prod_c: Any, source: str, dest: str) -> None:
        image = prod_c.attrs["Config"]["Image"]
        pause = bool(self.spec.docker.get("pause_prod_for_copy")) and prod_c.status == "running"
        if pause:  # an explicit opt-in: a consistent copy instead of a crash-consistent one
            with engine_call(f"pausing prod's {svc} for the copy"):
                prod_c.pause()
        try:
            self.engine.copy_volume(ctx.name, image, source, dest, f"copy of {svc}'s {source}", svc)
        finally:
            if pause:
                with engine_call(f"unpausing prod's {svc}"):
                    prod_c.unpause()

    def _inside_workspace(self, path: str) -> bool:
        p = Path(path)
        if not p.is_absolute():
            return True  # compose-style ./dir is relative to the workspace
        try:
            p.resolve().relative_to(self.spec.root.resolve())
            return True
        except ValueError:
            return False

    def _in_worktree(self, ctx: EnvContext, path: str) -> Path:
        """Where a bind mount of prod's checkout lands for a clone: the same place in its
        worktree, once the fence has seen that it leads nowhere else (a folder of the worktree
        made a link to prod's, or ``..`` in the path, would mount prod's files)."""
        p = Path(path)
        rel = p.resolve().relative_to(self.spec.root.resolve()) if p.is_absolute() else p
        return self.fence.path(ctx.name, ctx.worktree / rel, "mount into a container", follow=True).resolve()

    # --- start / stop ------------------------------------------------------------------
    def start(self, ctx: EnvContext, progress: Progress | None = None) -> None:
        if ctx.is_prod:
            raise ProdReadOnly("starting prod's containers")
        self.remember(ctx)
        settings = self.service_settings(ctx)
        net = self._network(ctx)
        if progress and not edge_process.running(ctx.run_dir):
            progress("starting the mail sink")
        self._start_edge(ctx, net)
        for svc in self._order(settings):
            self.start_service(ctx, svc, settings[svc], net.name, progress)
        self._forward_ports(ctx, net, settings)

    def start_service(self, ctx: EnvContext, svc: str, st: Settings, network: str,
                      progress: Progress | None = None) -> Any:
        name = self.container_name(ctx.name, svc)
        config = self._container_config(ctx, svc, st, network)
        c = self.engine.container(name)
        if c is not None and c.labels.get(LABEL_CONFIG) != config["labels"][LABEL_CONFIG]:
            if progress:
                progress(f"re-making {svc} (its settings changed)")
            self.engine.remove_container(c)
            c = None
        if c is None:
            with engine_call(f"creating the container {name}"):
                api = self.engine.api
                cid = api.create_container(**config)["Id"]
                c = self.engine.client.containers.get(cid)
        if c.status != "running":
            if progress:
                progress(f"starting {svc}")
            if is_remote():
                self._upload_binds(ctx, svc, st)
            with engine_call(f"starting {name}"):
                c.start()
            self._wait_healthy(ctx, svc, st, c)
        # else it runs already (a database server a reset kept up): no probe on the reset's path
        return c

    def _container_config(self, ctx: EnvContext, svc: str, st: Settings, network: str) -> dict[str, Any]:
        api = self.engine.api
        env = dict(st.env)
        env.update(ctx.env_overrides)
        over = ctx.service_overrides.get(svc, {})
        env.update(over.get("env", {}))
        edge = edge_process.values(ctx.run_dir)
        env = {k: edge_process.expand(v, edge) for k, v in env.items()}
        command = st.command
        if "command" in over:
            import shlex

            command = over["command"] if isinstance(over["command"], list) else shlex.split(str(over["command"]))
        ports: dict[str, Any] = {}
        for i, port in enumerate(st.ports):
            host_port = ctx.ports.get(svc) if i == 0 else None
            ports[port] = ("127.0.0.1", host_port) if host_port else ("127.0.0.1",)
        binds: dict[str, dict[str, str]] = {}
        tmpfs: dict[str, str] = {}
        bind_mode = self.spec.docker.get("bind_mounts", "copy")
        for m in st.mounts:
            mode = "ro" if m.read_only else "rw"
            if m.kind == "tmpfs":
                tmpfs[m.target] = ""
            elif m.kind == "bind" and self._inside_workspace(m.source) and not is_remote():
                binds[str(self._in_worktree(ctx, m.source))] = {"bind": m.target, "mode": mode}
            elif m.kind == "bind" and not self._inside_workspace(m.source) and bind_mode == "share-readonly":
                binds[m.source] = {"bind": m.target, "mode": "ro"}
            else:
                binds[self.volume_name(ctx.name, svc, m.target)] = {"bind": m.target, "mode": mode}
        labels = dict(st.labels)
        labels.update(self.engine.labels(ctx.name, svc, "service"))
        host_config = api.create_host_config(port_bindings=ports or None, binds=binds or None, tmpfs=tmpfs or None,
                                             init=st.init, network_mode=network)
        networking = api.create_networking_config({network: api.create_endpoint_config(aliases=[svc])})
        config = {"image": st.image, "command": command, "entrypoint": st.entrypoint,
                  "environment": env, "working_dir": st.working_dir, "user": st.user or "",
                  "ports": [tuple(p.split("/")) if "/" in p else p for p in st.ports] or None,
                  "volumes": [b["bind"] for b in binds.values()] or None, "labels": labels,
                  "healthcheck": st.healthcheck, "host_config": host_config, "networking_config": networking,
                  "name": self.container_name(ctx.name, svc), "hostname": svc, "detach": True}
        digest_src = json.dumps({k: v for k, v in config.items() if k != "labels"}, sort_keys=True, default=str)
        import hashlib

        labels[LABEL_CONFIG] = hashlib.sha256(digest_src.encode()).hexdigest()[:16]
        return config

    def _upload_binds(self, ctx: EnvContext, svc: str, st: Settings) -> None:
        """On a remote engine, a bind mount inside the workspace is a volume filled with
        the clone's worktree folder through the archive API at each start."""
        for m in st.mounts:
            if m.kind != "bind" or not self._inside_workspace(m.source):
                continue
            local = self._in_worktree(ctx, m.source)
            vol = self.volume_name(ctx.name, svc, m.target)
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                if local.is_dir():
                    for child in sorted(local.iterdir()):
                        tar.add(str(child), arcname=child.name)
                elif local.exists():
                    tar.add(str(local), arcname=local.name)
            self._fill_volume(ctx.name, svc, vol, st.image, buf.getvalue())

    def _fill_volume(self, env: str, svc: str, vol: str, image: str, tar_bytes: bytes) -> None:
        name = self.engine.name(env, svc, "upload", str(os.getpid()))
        with engine_call(f"uploading files into {vol}"):
            c = self.engine.client.containers.create(image, entrypoint=["true"], command=[], name=name,
                                                     volumes={vol: {"bind": "/to", "mode": "rw"}},
                                                     labels=self.engine.labels(env, svc, "helper"),
                                                     network_mode="none")
            try:
                self.engine.put_archive(c, "/to", tar_bytes, f"uploading files into {vol}")
            finally:
                c.remove(force=True, v=True)

    def _order(self, settings: dict[str, Settings]) -> list[str]:
        """Dependencies first; databases of stores before the services that use them."""
        store_services = {s.service for s in self.spec.stores.values() if s.service}
        names = sorted(settings, key=lambda n: (n not in store_services, list(settings).index(n)))
        done: list[str] = []

        def visit(n: str, seen: set[str]) -> None:
            if n in done or n in seen:
                return
            seen.add(n)
            for dep in settings[n].depends_on:
                if dep in settings:
                    visit(dep, seen)
            done.append(n)

        for n in names:
            visit(n, set())
        return done

    def _wait_healthy(self, ctx: EnvContext, svc: str, st: Settings, c: Any) -> None:
        """Probe health ourselves (the engine's healthcheck interval is too coarse to wait on):
        pg_isready for a PostgreSQL store's service, the healthcheck's test if there is one,
        else the container staying up for a moment."""
        timeout = next((s.start_timeout for n, s in ctx.services.items() if n == svc), START_TIMEOUT)
        timeout = max(timeout, START_TIMEOUT) if svc not in ctx.services else timeout
        is_pg = any(s.type == "postgres" and s.service == svc for s in self.spec.stores.values())
        test = (st.healthcheck or {}).get("Test") or []
        if is_pg:
            probe: list[str] | None = ["pg_isready", "-q", "-h", "/var/run/postgresql"]
        elif test and test[0] == "CMD":
            probe = list(test[1:])
        elif test and test[0] == "CMD-SHELL":
            probe = ["sh", "-c", test[1]]
        else:
            probe = None
        state = {"exited": False}

        def ready() -> bool:
            with engine_call(f"inspecting {c.name}"):
                c.reload()
            if c.status in ("exited", "dead"):
                state["exited"] = True
                return True
            if c.status != "running":
                return False
            if probe is None:
                return True
            code, _out, _err = self.engine.exec(c, probe, what=f"probing {svc}'s health")
            return code == 0

        ok = wait_until(ready, timeout, 0.05)
        if probe is None and ok and not state["exited"]:
            time.sleep(0.2)  # a process that dies at once should be seen dying
            with engine_call(f"inspecting {c.name}"):
                c.reload()
            state["exited"] = c.status in ("exited", "dead")
        if state["exited"]:
            code = c.attrs.get("State", {}).get("ExitCode")
            raise BackendError(f"{ctx.name}/{svc} exited with code {code} while starting. Its last lines:\n"
                               + self.tail(ctx, svc, 8), f"Full log: repro-tui logs {ctx.name} {svc}")
        if not ok:
            raise BackendError(f"{ctx.name}/{svc} did not become healthy within {timeout:.0f} s. Its last lines:\n"
                               + self.tail(ctx, svc, 8), f"Check its log: repro-tui logs {ctx.name} {svc}")

    def stop(self, ctx: EnvContext, progress: Progress | None = None) -> None:
        if ctx.is_prod:
            raise ProdReadOnly("stopping prod's containers")
        for c in self._clone_containers(ctx.name, reverse=True):
            if c.status in ("running", "paused", "restarting"):
                if progress:
                    progress(f"stopping {c.labels.get(LABEL_SERVICE)}")
                self.stop_container(c)
        edge_process.stop_all(ctx.run_dir)

    def engine_start(self, c: Any) -> None:
        """Start one of this workspace's containers (never prod's)."""
        if c.labels.get(LABEL_WORKSPACE) != self.workspace_id:
            raise ProdReadOnly(f"starting {c.name}")
        with engine_call(f"starting {c.name}"):
            c.start()

    def stop_container(self, c: Any, timeout: float = STOP_TIMEOUT) -> None:
        if c.labels.get(LABEL_WORKSPACE) != self.workspace_id:
            raise ProdReadOnly(f"stopping {c.name}")
        with engine_call(f"stopping {c.name}"):
            if c.status == "paused":
                c.unpause()
            c.stop(timeout=int(timeout))

    def _clone_containers(self, env: str, reverse: bool = False) -> list[Any]:
        cs = self.engine.containers(env, role="service")
        ctx = self._ctx(env)
        try:
            order = self._order(self.service_settings(ctx))
        except (BackendError, NotFound, InvalidInput):
            order = []
        cs.sort(key=lambda c: order.index(c.labels.get(LABEL_SERVICE)) if c.labels.get(LABEL_SERVICE) in order
                else len(order))
        return list(reversed(cs)) if reverse else cs

    # --- status, logs, describe ---------------------------------------------------------
    def status(self, ctx: EnvContext) -> dict[str, ServiceStatus]:
        if ctx.is_prod:
            containers = self.prod_containers(refresh=True)
            names = list(dict.fromkeys([*ctx.services, *containers]))
        else:
            containers = {c.labels.get(LABEL_SERVICE): c for c in self.engine.containers(ctx.name, role="service")}
            try:
                names = list(self.service_settings(ctx))
            except (NotFound, BackendError):
                names = list(containers)
        out = {}
        for name in names:
            c = containers.get(name)
            if c is None:
                out[name] = ServiceStatus(name=name, state="missing" if ctx.is_prod else "stopped",
                                          port=ctx.ports.get(name))
                continue
            out[name] = self._status_of(name, c, ctx)
        return out

    def _status_of(self, name: str, c: Any, ctx: EnvContext) -> ServiceStatus:
        s = c.attrs.get("State") or {}
        health = (s.get("Health") or {}).get("Status")
        if c.status == "running":
            state = {"starting": "starting", "unhealthy": "unhealthy"}.get(health or "", "running")
        elif c.status == "paused":
            state = "paused"
        elif c.status == "created":
            state = "stopped"
        else:
            code = s.get("ExitCode", 0)
            state = "crashed" if s.get("OOMKilled") or code not in (0, 130, 137, 143) else "stopped"
        port = ctx.ports.get(name)
        ports = (c.attrs.get("NetworkSettings") or {}).get("Ports") or {}
        if port is None:
            for binds in ports.values():
                if binds:
                    port = int(binds[0]["HostPort"])
                    break
        started = s.get("StartedAt")
        detail = {"container": c.name, "image": c.attrs.get("Config", {}).get("Image"),
                  "restarts": c.attrs.get("RestartCount", 0)}
        if health:
            detail["health"] = health
        return ServiceStatus(name=name, state=state, port=port, pid=s.get("Pid") or None,
                             started_at=_parse_time(started) if state == "running" else None, detail=detail)

    def _container_of(self, ctx: EnvContext, service: str) -> Any:
        if ctx.is_prod:
            return self.prod_container(service)
        c = self.engine.container(self.container_name(ctx.name, service))
        if c is None or c.labels.get(LABEL_WORKSPACE) != self.workspace_id:
            raise NotFound(f"{ctx.name} has no container for {service!r}.", f"Start it: repro-tui start {ctx.name}")
        return c

    def _secret_values(self, c: Any) -> list[str]:
        env = {}
        for item in c.attrs.get("Config", {}).get("Env") or []:
            k, _, v = item.partition("=")
            env[k] = v
        return secret_values(env, self.policy)

    def secret_values(self) -> list[str]:
        """The secrets in the environment of prod's containers (read when they were looked up)."""
        values: list[str] = []
        for c in (self._prod_cache or {}).values():
            values += self._secret_values(c)
        return values

    def tail(self, ctx: EnvContext, service: str, lines: int) -> str:
        try:
            text = "\n".join(self.logs(ctx, service, lines=lines))
        except (BackendError, NotFound):
            return "  (no log)"
        return "\n".join("  " + line for line in text.splitlines()[-lines:])

    def logs(self, ctx: EnvContext, service: str, follow: bool = False, lines: int = 200) -> Iterator[str]:
        c = self._container_of(ctx, service)
        values = self._secret_values(c)
        with engine_call(f"reading the log of {c.name}"):
            if not follow:
                raw = c.logs(tail=lines, stdout=True, stderr=True)
                text = raw.decode("utf-8", "replace")
                return iter([self.policy.redact_text(line, values) for line in text.splitlines()])
            stream = c.logs(tail=lines, stdout=True, stderr=True, stream=True, follow=True)

        def follow_lines() -> Iterator[str]:
            buf = b""
            try:
                for chunk in stream:
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        yield self.policy.redact_text(line.decode("utf-8", "replace"), values)
            except ENGINE_ERRORS as exc:
                raise BackendError(f"Docker: the log of {c.name} stopped: {exc}") from None

        return follow_lines()

    def describe(self, ctx: EnvContext) -> dict[str, dict[str, Any]]:
        """Per service, the normalised inspect data (see docker_settings.describe_container),
        secrets masked. A clone's volumes are shown under the name of the prod volume they
        were copied from, and bind mounts under their path relative to the workspace."""
        if ctx.is_prod:
            containers = self.prod_containers(refresh=True)
        else:
            containers = {c.labels.get(LABEL_SERVICE): c for c in self.engine.containers(ctx.name, role="service")}
        names: dict[str, str] = {}
        if not ctx.is_prod:
            for v in self.engine.volumes(ctx.name, role="data"):
                names[v.name] = v.attrs.get("Labels", {}).get(LABEL_SOURCE) or v.name
        root = str(ctx.worktree.resolve())
        out = {}
        for svc, c in sorted(containers.items()):
            with engine_call(f"inspecting {c.name}"):
                c.reload()
            for m in c.attrs.get("Mounts") or []:
                src = m.get("Source", "")
                if m.get("Type") == "bind" and (src == root or src.startswith(root + "/")):
                    names[src] = "." + src[len(root):]
            data = describe_container(c.attrs, self._image_env(c.attrs["Config"]["Image"]), names)
            data["env"] = {k: self.policy.mask_value(k, v)[0] for k, v in data["env"].items()}
            out[svc] = data
        return out

    def running_settings(self) -> dict[str, tuple[Settings, dict[str, str]]]:
        """Per service of prod, the settings its container runs with now, and its labels (raw
        values: whoever shows them masks them). Read only: prod's containers are inspected."""
        out = {}
        for svc, c in sorted(self.prod_containers(refresh=True).items()):
            with engine_call(f"inspecting {c.name}"):
                c.reload()
            out[svc] = (settings_from_inspect(c.attrs, self._image_env(c.attrs["Config"]["Image"])), dict(c.labels))
        return out

    # --- destroy -----------------------------------------------------------------------
    def destroy(self, ctx: EnvContext, progress: Progress | None = None) -> None:
        """Remove every container, volume and network labelled for this clone. Idempotent."""
        if ctx.is_prod:
            raise ProdReadOnly("removing containers")
        say = progress or (lambda _t: None)
        env = ctx.name
        edge_process.stop_all(ctx.run_dir)
        for c in self.engine.containers(env):
            say(f"removing {c.name}")
            self.engine.remove_container(c)
        for v in self.engine.volumes(env):
            self.engine.remove_volume(v.name)
        for n in self.engine.networks(env):
            with engine_call(f"removing the network {n.name}"):
                try:
                    n.remove()
                except Exception as exc:  # noqa: BLE001
                    if "not found" not in str(exc).lower():
                        raise
        self._plan_file(ctx).unlink(missing_ok=True)

    def leftovers(self, env: str) -> list[str]:
        """Names of everything still labelled for ``env`` (for checks and tests)."""
        return ([f"container {c.name}" for c in self.engine.containers(env)]
                + [f"volume {v.name}" for v in self.engine.volumes(env)]
                + [f"network {n.name}" for n in self.engine.networks(env)])

    # --- backend-held data: the clone's volumes (workbench.backends.docker_volumes) ---------
    def data_volumes(self, env: str, include_pg: bool = False) -> list[Any]:
        return self.volumes.data_volumes(env, include_pg)

    def snapshot_data(self, ctx: EnvContext, snapshot: str, progress: Progress | None = None) -> None:
        self.volumes.snapshot_data(ctx, snapshot, progress)

    def reset_data(self, ctx: EnvContext, snapshot: str, progress: Progress | None = None) -> None:
        self.volumes.reset_data(ctx, snapshot, progress)

    def delete_snapshot_data(self, ctx: EnvContext, snapshot: str) -> None:
        self.volumes.delete_snapshot_data(ctx, snapshot)

    def keep_undo_data(self, ctx: EnvContext, snapshot: str, progress: Progress | None = None) -> None:
        self.volumes.keep_undo_data(ctx, snapshot, progress)

    def drop_undo_data(self, ctx: EnvContext, swap_only: bool = False) -> None:
        self.volumes.drop_undo_data(ctx, swap_only)

    def has_undo_data(self, ctx: EnvContext) -> bool | None:
        return self.volumes.has_undo_data(ctx)

    def undo_data(self, ctx: EnvContext, done: str | None = None, note: Callable[[str], None] | None = None,
                  progress: Progress | None = None) -> None:
        self.volumes.undo_data(ctx, done, note, progress)

    def stop_for_reset(self, ctx: EnvContext, progress: Progress | None = None) -> None:
        """Stop every container of the clone but the servers of PostgreSQL stores: those
        swap databases inside the running server (a rename), which is what makes a reset
        instant. The others are stopped together, not one after the other, and killed at
        once: the state a reset throws away needs no graceful stop, and many images' PID 1
        ignores SIGTERM (``docker stop`` would wait its whole timeout). ``clone.stop_grace``
        gives a service time where a user wants it."""
        if ctx.is_prod:
            raise ProdReadOnly("stopping prod's containers")
        keep = {st.service for st in self.spec.stores.values() if st.type == "postgres"}
        running = [c for c in self._clone_containers(ctx.name, reverse=True)
                   if c.labels.get(LABEL_SERVICE) not in keep and c.status in ("running", "paused", "restarting")]
        for c in running:
            if progress:
                progress(f"stopping {c.labels.get(LABEL_SERVICE)}")
        grace = self.spec.stop_grace
        _in_parallel([partial(self.stop_container, c, grace.get(c.labels.get(LABEL_SERVICE, ""), 0.0))
                      for c in running])

    def service_names(self, ctx: EnvContext) -> list[str]:
        """Listed services, then the ones adopted from the compose project."""
        names = list(ctx.services)
        try:
            if ctx.is_prod:
                found = list(self.prod_containers())
            else:
                found = list(self.service_settings(ctx))
        except (NotFound, BackendError):
            found = [c.labels.get(LABEL_SERVICE) for c in self.engine.containers(ctx.name, role="service")]
        return names + [n for n in found if n and n not in names]

def _in_parallel(calls: list[Callable[[], None]]) -> None:
    """Run engine calls at the same time; the first error is raised once all are done."""
    if len(calls) <= 1:
        for call in calls:
            call()
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, len(calls))) as pool:
        futures = [pool.submit(call) for call in calls]
    for f in futures:
        f.result()


def _parse_time(text: str | None) -> float | None:
    if not text or text.startswith("0001"):
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return None


__all__ = ["DockerBackend", "LABEL_ENV"]
