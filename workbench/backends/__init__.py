"""Backends start, stop and inspect the services of an environment."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.backends.base import Backend
    from workbench.fence import Fence
    from workbench.redact import Redactor
    from workbench.secrets import SecretPolicy
    from workbench.spec import Spec


def make_backend(spec: Spec, workspace_id: str, state_dir, policy: SecretPolicy | None = None,
                 fence: Fence | None = None, redactor: Redactor | None = None) -> Backend:
    if spec.backend == "docker":
        from workbench.backends.docker import DockerBackend  # imported only when used

        return DockerBackend(spec, workspace_id, state_dir, policy, fence, redactor)
    from workbench.backends.local import LocalBackend

    return LocalBackend(spec, workspace_id, state_dir, policy, fence, redactor)
