"""Build step of the package: compiles ``workbench/diff/_cells.c`` into ``_cells.so``.

The library lets the data diff compare a table's rows by their stored bytes where two
files share no page (``workbench/diff/cellwalk.py``). It is optional: without a C
compiler the package installs all the same and the diff finds the same changes more
slowly, which this step says in the install's output.

``python hatch_build.py`` builds the library in place (what ``scripts/test-setup.sh``
does when it is missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

SOURCE = Path("workbench") / "diff" / "_cells.c"
LIBRARY = SOURCE.with_name("_cells.so")


def build_library(root: Path) -> str | None:
    """Compile the library under ``root``; returns why it could not, or None."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return "no C compiler (cc or gcc) found"
    out = root / LIBRARY
    tmp = out.with_name(f".{out.name}.{os.getpid()}")
    cmd = [cc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(root / SOURCE)]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        tmp.unlink(missing_ok=True)
        return f"{' '.join(cmd)} failed: {getattr(exc, 'stderr', '') or exc}"
    os.replace(tmp, out)   # a process that loaded the old one keeps it
    return None


try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:   # run as a script, outside a build
    BuildHookInterface = object  # type: ignore[assignment,misc]


class CellsBuildHook(BuildHookInterface):  # type: ignore[misc,valid-type]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        why = build_library(Path(self.root))
        if why:
            print(f"repro-tui: the diff's C library was not built ({why}); "
                  "the data diff works without it, slower on stores that share no page.", file=sys.stderr)
            return
        build_data["artifacts"].append(str(LIBRARY))
        if version != "editable":
            build_data["pure_python"] = False
            build_data["infer_tag"] = True


if __name__ == "__main__":
    problem = build_library(Path(__file__).resolve().parent)
    if problem:
        print(problem, file=sys.stderr)
        raise SystemExit(1)
    print(f"built {LIBRARY}")
