"""What ``repro-tui demo`` prints once the shop is built: where it is, prod's URL and port,
the failing order to try, and the next commands. The README's walk-through follows it.

The demo's prod listens on 18080 unless that port is taken (another demo, another
program): then on a free port, and the guide says so first, never silently.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from workbench.demo.story import DEMO_BUG, DEMO_PORT


def demo_guide(path: Path, port: int, running: bool, moved: bool = False) -> tuple[str, dict[str, Any]]:
    """The guide as text, and as data (``--json``); ``moved``: 18080 was taken, ``port`` was free."""
    url = f"http://127.0.0.1:{port}"
    order = f"{url}/orders/{DEMO_BUG['order_id']}"
    where = shlex.quote(str(path))
    lines = []
    if moved:
        lines.append(f"note: port {DEMO_PORT} is in use (another demo, or another program), so this demo's prod "
                     f"listens on {port}: use {port} wherever the README says {DEMO_PORT}.")
    state = "running; repro-tui stop prod stops it" if running else "not started: repro-tui start prod"
    lines += [f"The demo shop is ready in {path}",
              f"  prod's shop API  {url}  ({state})",
              f"  the bug          curl -i {order}    # HTTP {DEMO_BUG['status']}",
              "Next:",
              f"  cd {where}",
              "  repro-tui fork prod bug1     # a clone: its own branch, port and scrubbed data",
              "  repro-tui                    # the screen (? lists its keys)"]
    data = {"path": str(path), "port": port, "url": url, "running": running, "try": f"curl -i {order}",
            "moved_from": DEMO_PORT if moved else None,
            "next": [f"cd {where}", "repro-tui fork prod bug1", "repro-tui"]}
    return "\n".join(lines) + "\n", data
