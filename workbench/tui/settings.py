"""What the screen knows of its app: plain settings, fixed when the app starts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Clock = Callable[[], float]


@dataclass(frozen=True)
class ScreenSettings:
    clock: Clock                    # "now", for ages (tests pass a fixed one)
    mask: bool                      # hide ports, which change from run to run (snapshot tests)
    keymap: dict[str, str] = field(default_factory=dict)   # binding id -> keys, from keymap.toml
    keymap_file: Path | None = None
    workspace_name: str = ""
    prod_branch: str = "main"
    backend_name: str = "local"
    has_services: bool = True
    checks: tuple[Any, ...] = ()    # repro.yaml's checks (workbench.spec.CheckSpec), for the Checks pane
    root: Path | None = None        # the workspace's folder
    cwd: Path | None = None         # where the screen was started (worktree paths are shown from here)
    user: str = ""                  # user@host, as the journal names people: whose reset an undo may take back
