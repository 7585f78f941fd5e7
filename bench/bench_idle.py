"""What an idle screen writes to its terminal: over SSH every repaint is bytes on the link.

    .venv/bin/python bench/bench_idle.py [--seconds 10] [--long 0] [--code PATH]

The demo workspace with a clone ``bug1`` (its web service running); the installed
``repro-tui`` in a real pseudo-terminal (80x24, 256 colours) with ``bug1``'s live diff on
screen, then with its logs dialog open. Nobody types; the bytes the terminal receives are
counted over ``--seconds`` (after 3 s to settle). ``--long N`` also counts over N seconds
with the live diff on screen (an age on screen turns from one minute to the next in it).
``--code PATH`` runs the screen from another copy of the code (e.g. an older commit, made
with ``git archive COMMIT | tar -x -C PATH``), to compare. Target: under 200 B/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for var, value in (("GIT_AUTHOR_NAME", "bench"), ("GIT_AUTHOR_EMAIL", "bench@example.invalid"),
                   ("GIT_COMMITTER_NAME", "bench"), ("GIT_COMMITTER_EMAIL", "bench@example.invalid")):
    os.environ.setdefault(var, value)



def main() -> int:
    from tests.terminal import REPRO_TUI, screen
    from workbench.backends.local import free_port, kill_services
    from workbench.demo import build_demo
    from workbench.workspace import Workspace

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--long", type=float, default=0.0)
    parser.add_argument("--code", type=Path, default=ROOT)
    args = parser.parse_args()
    if not REPRO_TUI.exists():
        print(f"{REPRO_TUI} is missing: install the project first (make venv).", file=sys.stderr)
        return 1
    os.environ.setdefault("REPRO_READY", "sync")
    base = Path(tempfile.mkdtemp(prefix="repro-bench-idle-"))
    root = base / "demo"
    build_demo(root, orders=2000, port=free_port(set()))   # its own port: another demo may hold 18080
    ws = Workspace(root)
    ws.fork("prod", "bug1")
    ws.close()
    term = screen(root, code=args.code.resolve())
    results: list[tuple[str, float, float]] = []
    try:
        term.wait_for("repro/bug1")
        term.select_next("bug1")
        time.sleep(3.0)
        results.append(("live diff of a clone on screen", args.seconds, term.bytes_during(args.seconds)))
        mark = term.mark()
        term.type("l")
        term.wait_for("refreshed every second", since=mark)
        time.sleep(3.0)
        results.append(("the logs dialog open", args.seconds, term.bytes_during(args.seconds)))
        if args.long:
            term.type("\x1b")
            time.sleep(3.0)
            results.append(("live diff, a long while", args.long, term.bytes_during(args.long)))
    finally:
        term.close()
        kill_services(root)
        shutil.rmtree(base, ignore_errors=True)
    print(f"code: {args.code}")
    for what, seconds, count in results:
        print(f"idle, {what:<32} {count:7d} bytes in {seconds:4.0f} s = {count / seconds:7.1f} B/s (target < 200)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
