"""Diff of services: the effective settings (repro.yaml with the clone's overrides applied,
templates as declared) and the runtime facts of each side.

Intent follows the design: a difference the clone has by construction is an
``override`` — a declared override (``clone.overrides``), or an automatic per-clone
difference (the port a clone's service runs on, container and network names). Runtime
facts (state, pid, uptime) are shown as ``runtime`` entries and are not changes.

For Docker, the backend's ``describe()`` gives normalised inspect data per service; it is
compared under ``services.NAME.container.KEY`` with the same rules.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from workbench.diff.model import Change, GroupSummary
from workbench.diff.values import Shower

if TYPE_CHECKING:
    from workbench.model import Side

# described keys that differ between any two environments by construction
AUTOMATIC_KEYS = {"name", "names", "container", "container_name", "hostname", "network", "networks",
                  "network_mode", "ip", "ip_address", "aliases", "ports", "port", "mounts", "volumes", "labels",
                  "project", "compose_project"}
# described keys that are facts of a run, not settings
RUNTIME_KEYS = {"id", "container_id", "created", "started_at", "finished_at", "pid", "state", "status",
                "health", "uptime", "restart_count", "exit_code", "running"}


def effective(side: Side) -> dict[str, dict[str, Any]]:
    """Each service's settings as the side runs them, templates unexpanded."""
    out = {}
    for name, svc in side.services.items():
        d = svc.declared()
        over = side.service_overrides.get(name, {})
        env = dict(d.get("env") or {})
        env.update(side.env_overrides)
        env.update(over.get("env") or {})
        d["env"] = env
        if "command" in over:
            d["command"] = over["command"]
        d["port"] = side.ports.get(name, d.get("port"))
        out[name] = d
    return out


def _overridden(side: Side, service: str) -> tuple[set[str], bool]:
    over = side.service_overrides.get(service, {})
    return set(side.env_overrides) | set(over.get("env") or {}), "command" in over


class ServicesDiff:
    def __init__(self, left: Side, right: Side, shower: Shower, limit: int | None = None,
                 described: tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]] | None = None,
                 now: float | None = None) -> None:
        self.left, self.right, self.shower, self.limit = left, right, shower, limit
        self.described = described
        self.now = time.time() if now is None else now
        self.groups: list[GroupSummary] = []
        self.different_envs = left.env != right.env

    def changes(self) -> Iterator[Change]:
        a, b = effective(self.left), effective(self.right)
        names = list(a) + [n for n in b if n not in a]
        if self.described is not None:  # services adopted from docker compose are only described
            names += [n for n in dict.fromkeys([*self.described[0], *self.described[1]]) if n not in names]
        for name in names:
            g = GroupSummary("services", name)
            self.groups.append(g)
            yield from self._service(name, a.get(name), b.get(name), g)
            g.status = "compared" if g.total else "same"

    def _emit(self, g: GroupSummary, ch: Change) -> bool:
        if ch.runtime:
            return True
        return g.count(ch.kind, self.limit)

    def _change(self, g: GroupSummary, path: str, left: Any, right: Any, name: str, *, intent: str | None = None,
                runtime: bool = False) -> Iterator[Change]:
        kind = "added" if left is None else "removed" if right is None else "changed"
        ch = Change("services", path, kind, intent=intent, runtime=runtime)
        if self._emit(g, ch):
            (ch.left, m1), (ch.right, m2) = self.shower.tree(left, name), self.shower.tree(right, name)
            ch.masked = m1 or m2
            yield ch

    def _service(self, name: str, a: dict[str, Any] | None, b: dict[str, Any] | None,
                 g: GroupSummary) -> Iterator[Change]:
        base = f"services.{name}"
        if a is None or b is None:
            if a is not None or b is not None:
                yield from self._change(g, base, a, b, "")
        else:
            env_over = _overridden(self.left, name)[0] | _overridden(self.right, name)[0]
            cmd_over = _overridden(self.left, name)[1] or _overridden(self.right, name)[1]
            for key in list(a) + [k for k in b if k not in a]:
                va, vb = a.get(key), b.get(key)
                if va == vb:
                    continue
                if key == "env" and isinstance(va, dict) and isinstance(vb, dict):
                    for k in list(va) + [k for k in vb if k not in va]:
                        if va.get(k) != vb.get(k):
                            yield from self._change(g, f"{base}.env.{k}", va.get(k), vb.get(k), k,
                                                    intent="override" if k in env_over else None)
                    continue
                intent = None
                if key == "command" and cmd_over:
                    intent = "override"
                elif key == "port" and self.different_envs:
                    intent = "override"
                yield from self._change(g, f"{base}.{key}", va, vb, key, intent=intent)
        yield from self._runtime(name, g)
        if self.described is not None:
            yield from self._described(name, g)

    def _runtime(self, name: str, g: GroupSummary) -> Iterator[Change]:
        if self.left.runtime is None or self.right.runtime is None:
            return   # a snapshot has no runtime: nothing to set beside the other side's
        ra, rb = self.left.runtime.get(name), self.right.runtime.get(name)
        if ra is None and rb is None:
            return
        base = f"services.{name}.runtime"
        facts = {}
        for side, r in (("a", ra), ("b", rb)):
            r = r or {}
            started = r.get("started_at")
            facts[side] = {"state": r.get("state"), "pid": r.get("pid"),
                           "uptime": int(self.now - started) if started and r.get("state") == "running" else None}
        for key in ("state", "pid", "uptime"):
            va, vb = facts["a"][key], facts["b"][key]
            if va != vb:
                yield from self._change(g, f"{base}.{key}", va, vb, key, runtime=True)

    def _described(self, name: str, g: GroupSummary) -> Iterator[Change]:
        assert self.described is not None
        da, db = self.described[0].get(name) or {}, self.described[1].get(name) or {}
        base = f"services.{name}.container"
        env_over = _overridden(self.left, name)[0] | _overridden(self.right, name)[0]
        for key in list(da) + [k for k in db if k not in da]:
            va, vb = da.get(key), db.get(key)
            if va == vb:
                continue
            low = key.lower()
            if low in ("env", "environment") and isinstance(va, dict) and isinstance(vb, dict):
                for k in list(va) + [k for k in vb if k not in va]:
                    if va.get(k) != vb.get(k):
                        yield from self._change(g, f"{base}.env.{k}", va.get(k), vb.get(k), k,
                                                intent="override" if k in env_over else None)
                continue
            runtime = low in RUNTIME_KEYS
            intent = "override" if not runtime and self.different_envs and low in AUTOMATIC_KEYS else None
            yield from self._change(g, f"{base}.{key}", va, vb, key, intent=intent, runtime=runtime)
