"""The container settings of a side, for the services diff of the docker backend.

``DockerBackend.describe`` gives each service's inspect data, normalised so that a fresh
clone differs from prod only by its per-clone keys (name, networks, host ports: intent
``override``) and declared overrides. A snapshot has no containers: a side that is a
snapshot is not described, and the services diff then compares declared settings only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.model import Side


def describes(ws: Any) -> bool:
    """True when the workspace's backend has container settings to compare."""
    spec = getattr(ws, "spec", None)
    return getattr(spec, "backend", None) == "docker" and hasattr(ws, "backend") and hasattr(ws, "context")


def describe_side(ws: Any, side: Side) -> dict[str, dict[str, Any]] | None:
    """The backend's normalised settings of each container of a side; None for a snapshot."""
    if side.snapshot is not None:
        return None
    return ws.backend.describe(ws.context(side.env))
