"""What the engine asks of a backend. Backends know nothing of Textual or of the CLI."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.fence import Fence
from workbench.redact import Redactor
from workbench.secrets import SecretPolicy
from workbench.spec import ServiceSpec, Spec

Progress = Callable[[str], None]


@dataclass
class EnvContext:
    """Everything a backend needs to know about one environment."""

    name: str                      # "prod" or a clone's name
    kind: str                      # "prod" | "clone"
    worktree: Path                 # prod: the workspace root
    run_dir: Path                  # pid files, logs (.repro/run/NAME)
    services: dict[str, ServiceSpec]   # the service definitions that apply to this environment
    ports: dict[str, int] = field(default_factory=dict)        # service -> host port
    store_paths: dict[str, str] = field(default_factory=dict)  # store -> path/location, for {stores.X.path}
    env_overrides: dict[str, str] = field(default_factory=dict)  # clone.overrides.env
    service_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def is_prod(self) -> bool:
        return self.kind == "prod"


@dataclass
class ServiceStatus:
    name: str
    state: str                     # running | stopped | crashed | starting | unhealthy | missing
    port: int | None = None
    pid: int | None = None
    started_at: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)   # backend-specific runtime facts

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state, "port": self.port}
        if self.pid is not None:
            out["pid"] = self.pid
        if self.started_at is not None:
            out["started_at"] = self.started_at
        out.update(self.detail)
        return out


class Backend(ABC):
    """Starts, stops and inspects services. Every method that changes something
    must refuse prod unless the backend allows it (local prod start/stop for the demo)."""

    name: str = "base"

    def __init__(self, spec: Spec, workspace_id: str, state_dir: Path, policy: SecretPolicy | None = None,
                 fence: Fence | None = None, redactor: Redactor | None = None) -> None:
        self.spec = spec
        self.workspace_id = workspace_id
        self.state_dir = state_dir
        # every process start and container action on a clone passes the fence
        self.fence = fence or Fence(state_dir.parent, state_dir)
        self.redactor = redactor   # the workspace's: what a log may hold is masked by value too
        # the workspace's policy, so that a secret masked in a log has the tag it has in the diff
        self.policy = policy or SecretPolicy(spec.secrets, spec.not_secrets)

    @abstractmethod
    def allocate_ports(self, ctx: EnvContext, avoid: set[int]) -> dict[str, int]:
        """Free host ports for a clone's services, none of them in ``avoid``."""

    @abstractmethod
    def start(self, ctx: EnvContext, progress: Progress | None = None) -> None:
        """Start every service and wait until healthy; raise BackendError with the log tail."""

    @abstractmethod
    def stop(self, ctx: EnvContext, progress: Progress | None = None) -> None:
        """Stop every service (TERM, then KILL after a grace period)."""

    @abstractmethod
    def status(self, ctx: EnvContext) -> dict[str, ServiceStatus]:
        """The state of every service; never raises for a service that is not running."""

    @abstractmethod
    def logs(self, ctx: EnvContext, service: str, follow: bool = False, lines: int = 200) -> Iterator[str]:
        """A service's output, the last ``lines`` lines, then new ones when ``follow``."""

    def create(self, ctx: EnvContext, progress: Progress | None = None,  # noqa: B027
               source: str | None = None, source_snapshot: str | None = None) -> None:
        """Make what a clone needs before its stores are copied (docker: network, volumes),
        from prod, or from the clone ``source`` (its live data, or its ``source_snapshot``)."""

    def destroy(self, ctx: EnvContext, progress: Progress | None = None) -> None:
        """Remove everything the backend made for a clone. Idempotent."""
        self.stop(ctx, progress)

    # data the backend holds itself (docker: named volumes); local stores hold the rest
    def snapshot_data(self, ctx: EnvContext, snapshot: str, progress: Progress | None = None) -> None:  # noqa: B027
        """Copy the clone's backend-held data (volumes) into snapshot ``snapshot``, consistently."""

    def reset_data(self, ctx: EnvContext, snapshot: str, progress: Progress | None = None) -> None:  # noqa: B027
        """Put back the backend-held data of a snapshot (services are stopped)."""

    def delete_snapshot_data(self, ctx: EnvContext, snapshot: str) -> None:  # noqa: B027
        """Remove the backend-held copies of one snapshot. Idempotent."""

    def keep_undo_data(self, ctx: EnvContext, snapshot: str, progress: Progress | None = None) -> None:  # noqa: B027
        """Before a reset to ``snapshot``: keep the backend-held data it replaces, for an undo."""

    def drop_undo_data(self, ctx: EnvContext, swap_only: bool = False) -> None:  # noqa: B027
        """Forget the backend-held undo copies (one cut off half way is not an undo); with
        ``swap_only``, only the copies an undo makes while it swaps."""

    def has_undo_data(self, ctx: EnvContext) -> bool | None:
        """None when the backend holds no data of the clone; else whether an undo copy is kept."""
        return None

    def undo_data(self, ctx: EnvContext, done: str | None = None,  # noqa: B027
                  note: Callable[[str], None] | None = None, progress: Progress | None = None) -> None:
        """Swap the backend-held data with its undo copy; ``done``: the last stage a cut-off
        undo recorded through ``note``."""

    def stop_for_reset(self, ctx: EnvContext, progress: Progress | None = None) -> None:
        """Stop what must not run while data is swapped (docker keeps database servers up,
        since their stores swap databases inside them)."""
        self.stop(ctx, progress)

    def service_env(self, ctx: EnvContext, svc: ServiceSpec) -> dict[str, str]:
        """The environment a service of ``ctx`` runs with, for ``repro-tui shell`` (local processes)."""
        return {}

    def secret_values(self) -> list[str]:
        """Secret values the backend has read from what runs (a container's environment)."""
        return []

    def declared_envs(self, ctx: EnvContext) -> dict[str, dict[str, str]]:
        """Each service's environment as prod declares it (before a clone's overrides)."""
        return {name: dict(svc.env) for name, svc in ctx.services.items()}

    def egress_fence(self, ctx: EnvContext) -> tuple[bool, str]:
        """Whether a clone's services are cut off from the outside, and what they still reach."""
        return False, ("local processes can reach any host; only their mail, payment and webhook settings "
                       "are changed")

    def service_names(self, ctx: EnvContext) -> list[str]:
        """The services an environment runs (adopted compose services included)."""
        return list(ctx.services)

    def describe(self, ctx: EnvContext) -> dict[str, dict[str, Any]]:
        """Normalised runtime settings per service, for the services diff."""
        return {}

    def running_settings(self) -> dict[str, Any]:
        """Per service of prod, the settings its container runs with now and its labels (docker:
        for prod's drift); nothing for backends without containers."""
        return {}
