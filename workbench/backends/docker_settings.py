"""A service's container settings, read from repro.yaml (a compose-like subset) or from a
running container's inspect data (services adopted from a compose project), and turned
into the arguments of the Engine API.

Pure data and functions: no engine calls here, so the conversions are tested without Docker.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.spec import ServiceSpec

DEFAULT_PGDATA = "/var/lib/postgresql/data"


@dataclass
class Mount:
    kind: str                 # volume | bind | tmpfs
    target: str               # path inside the container
    source: str = ""          # volume name (empty: anonymous) or host path
    read_only: bool = False


@dataclass
class Settings:
    """What a container of one service is made from."""

    image: str
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    ports: list[str] = field(default_factory=list)       # container ports, "5432/tcp"; the first is the main one
    mounts: list[Mount] = field(default_factory=list)
    healthcheck: dict[str, Any] | None = None             # Engine API form: Test, Interval (ns), ...
    working_dir: str | None = None
    user: str | None = None
    init: bool | None = None
    labels: dict[str, str] = field(default_factory=dict)  # prod's own labels, compose's left out
    depends_on: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        data = dict(data)
        data["mounts"] = [Mount(**m) for m in data.get("mounts", [])]
        return cls(**data)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def pgdata(self) -> str:
        return self.env.get("PGDATA") or DEFAULT_PGDATA

    def mount_holding(self, path: str) -> Mount | None:
        """The volume mount a path lives in (the longest mount point that contains it)."""
        best = None
        for m in self.mounts:
            if m.kind == "tmpfs":
                continue
            t = m.target.rstrip("/") or "/"
            if path == t or path.startswith(t.rstrip("/") + "/"):
                if best is None or len(t) > len(best.target):
                    best = m
        return best


# --- from repro.yaml ---------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|ns|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
            "h": 3_600_000_000_000}


def duration_ns(value: Any) -> int:
    """Compose durations ("1s", "1m30s", "500ms", or a number of seconds) in nanoseconds."""
    if isinstance(value, (int, float)):
        return int(value * 1_000_000_000)
    text = str(value).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {value!r}")
    return int(sum(float(n) * _UNIT_NS[u] for n, u in parts))


def _argv(value: str | list[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [str(v) for v in value] if isinstance(value, list) else shlex.split(value)


def container_port(entry: str) -> str:
    """The container side of a compose port entry: "127.0.0.1:8080:80/tcp" -> "80/tcp"."""
    proto = "tcp"
    if "/" in entry:
        entry, proto = entry.rsplit("/", 1)
    port = entry.rsplit(":", 1)[-1]
    return f"{port}/{proto}"


def parse_volume(entry: str) -> Mount:
    """A compose volume entry: "name:/path[:ro]", "./dir:/path", "/abs:/path" or "/path"."""
    parts = entry.split(":")
    ro = len(parts) >= 3 and parts[-1] in ("ro", "rw") and parts.pop() == "ro"
    if len(parts) == 1:
        return Mount("volume", parts[0], "", ro)
    source, target = parts[0], ":".join(parts[1:])
    if source.startswith((".", "/", "~")):
        return Mount("bind", target, source, ro)
    return Mount("volume", target, source, ro)


def healthcheck_from_spec(hc: dict[str, Any] | None) -> dict[str, Any] | None:
    if not hc:
        return None
    test = hc.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    elif isinstance(test, list) and test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
        test = ["CMD", *map(str, test)]
    out: dict[str, Any] = {"Test": test}
    for key, api in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod")):
        if key in hc:
            out[api] = duration_ns(hc[key])
    if "retries" in hc:
        out["Retries"] = int(hc["retries"])
    return out


def settings_from_spec(svc: ServiceSpec) -> Settings:
    ports = [container_port(p) for p in svc.ports]
    if not ports and svc.port:
        ports = [f"{svc.port}/tcp"]
    assert svc.image, "a docker service has an image (checked by the spec)"
    return Settings(image=svc.image, command=_argv(svc.command), entrypoint=_argv(svc.entrypoint),
                    env=dict(svc.env), ports=ports, mounts=[parse_volume(v) for v in svc.volumes],
                    healthcheck=healthcheck_from_spec(svc.healthcheck), working_dir=svc.working_dir,
                    user=svc.user, depends_on=list(svc.depends_on))


# --- from a running container (adoption, and prod's volumes) -------------------------

def env_list_to_dict(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def settings_from_inspect(attrs: dict[str, Any], image_env: list[str] | None = None) -> Settings:
    """Settings of a running container, as compose made it. ``image_env`` (the image's own
    ENV) is left out of the environment so that only what was set for the service is kept."""
    cfg = attrs.get("Config") or {}
    host = attrs.get("HostConfig") or {}
    env = env_list_to_dict(cfg.get("Env"))
    for k, v in env_list_to_dict(image_env).items():
        if env.get(k) == v:
            env.pop(k)
    bindings = host.get("PortBindings") or {}
    ports = sorted(bindings, key=_port_key)
    mounts = []
    for m in attrs.get("Mounts") or []:
        if m.get("Type") == "volume":
            mounts.append(Mount("volume", m["Destination"], m.get("Name", ""), not m.get("RW", True)))
        elif m.get("Type") == "bind":
            mounts.append(Mount("bind", m["Destination"], m.get("Source", ""), not m.get("RW", True)))
    for target in sorted(host.get("Tmpfs") or {}):
        mounts.append(Mount("tmpfs", target))
    labels = {k: v for k, v in (cfg.get("Labels") or {}).items()
              if not k.startswith("com.docker.compose.") and not k.startswith("repro.")}
    return Settings(image=cfg.get("Image") or attrs.get("Image", ""), command=cfg.get("Cmd"),
                    entrypoint=cfg.get("Entrypoint"), env=env, ports=ports,
                    mounts=sorted(mounts, key=lambda m: m.target),
                    healthcheck=cfg.get("Healthcheck"), working_dir=cfg.get("WorkingDir") or None,
                    user=cfg.get("User") or None, init=host.get("Init"), labels=labels)


def _port_key(port: str) -> tuple[int, str]:
    num, _, proto = port.partition("/")
    return (int(num) if num.isdigit() else 0, proto)


# --- for the services diff --------------------------------------------------------------

def describe_container(attrs: dict[str, Any], image_env: list[str] | None,
                       mount_names: dict[str, str]) -> dict[str, Any]:
    """A container's runtime settings, normalised so that a fresh clone differs from prod
    only by what it differs by on purpose: ``name``, ``networks`` and the host side of
    ``ports`` (per-clone, intent ``override``), and declared overrides.

    ``mount_names`` maps a volume's name to the name shown (a clone's volume is shown as
    the prod volume it was copied from)."""
    cfg = attrs.get("Config") or {}
    state = attrs.get("State") or {}
    host = attrs.get("HostConfig") or {}
    settings = settings_from_inspect(attrs, image_env)
    ports: dict[str, str | None] = {}
    for port, binds in sorted((attrs.get("NetworkSettings") or {}).get("Ports", {}).items() or
                              (host.get("PortBindings") or {}).items()):
        if binds:
            b = binds[0]
            ports[port] = f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}"
    mounts = {}
    for m in settings.mounts:
        if m.kind == "volume":
            anonymous = re.fullmatch(r"[0-9a-f]{64}", m.source)
            shown = mount_names.get(m.source, "(anonymous)" if anonymous else m.source)
            mounts[m.target] = f"volume:{shown}" + (":ro" if m.read_only else "")
        elif m.kind == "bind":
            mounts[m.target] = f"bind:{mount_names.get(m.source, m.source)}" + (":ro" if m.read_only else "")
        else:
            mounts[m.target] = "tmpfs"
    health = (state.get("Health") or {}).get("Status")
    hc = cfg.get("Healthcheck") or {}
    return {
        "name": (attrs.get("Name") or "").lstrip("/"),
        "image": cfg.get("Image"),
        "image_id": (attrs.get("Image") or "")[:19],
        "command": cfg.get("Cmd"),
        "entrypoint": cfg.get("Entrypoint"),
        "env": settings.env,
        "ports": ports,
        "mounts": mounts,
        "healthcheck": hc.get("Test"),
        "health": health,
        "state": state.get("Status"),
        "restart_count": attrs.get("RestartCount", 0),
        "networks": sorted(((attrs.get("NetworkSettings") or {}).get("Networks") or {}).keys()),
    }


#: keys of ``describe_container`` that differ between prod and a clone by construction
PER_CLONE_KEYS = ("name", "ports", "networks")
#: keys that are runtime facts: shown, not counted as changes
RUNTIME_KEYS = ("health", "state", "restart_count")
