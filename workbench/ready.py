"""The detached helper that prepares a ready copy of a snapshot, so the next reset is a rename.

    python -m workbench.ready WORKSPACE ENV SNAPSHOT
"""

from __future__ import annotations

import sys
from pathlib import Path

from workbench.errors import ReproError


def main(argv: list[str]) -> int:
    from workbench.workspace import Workspace

    root, env, snapshot = argv
    try:
        ws = Workspace(Path(root))
        ws.ready.make(env, snapshot)
    except ReproError as exc:
        print(f"ready copy of {env}@{snapshot}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        # a full disk or a folder removed under it: the next reset copies the snapshot itself
        print(f"ready copy of {env}@{snapshot}: {exc.strerror or exc}; the next reset copies the snapshot "
              "instead", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
