"""The incident loop on the demo shop: what the checks add to an operation, and how long
`check`, `drift` and `report` take.

    .venv/bin/python bench/bench_incident.py [--orders 20000] [--runs 7] [--dir PATH]

Builds the demo (20,000 orders), starts its prod, forks bug1 (the checks run after the
fork), hand-edits prod's config (drift), then times medians of: the `check` row as the
journal runs it after each fork, reset and start (one check, 3 requests on the clone and 3
on prod), `Workspace.check`, `Workspace.drift`, `Workspace.postmortem` + Markdown, and the
whole commands `repro-tui check bug1`, `drift` and `report bug1` as a user runs them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("REPRO_READY", "sync")


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def cli_ms(root: Path, runs: int, *args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return median_ms(lambda: subprocess.run([sys.executable, "-m", "workbench", *args], cwd=root, env=env,
                                            capture_output=True, check=False), runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    from workbench.backends.local import free_port, kill_services
    from workbench.demo import build_demo
    from workbench.postmortem_md import markdown
    from workbench.workspace import Workspace

    base = args.dir or Path(tempfile.mkdtemp(prefix="repro-bench-incident-"))
    root = base / "shop"
    shutil.rmtree(root, ignore_errors=True)
    build_demo(root, orders=args.orders, port=free_port(set()))
    ws = Workspace(root)
    try:
        ws.start("prod")
        ws.fork("prod", "bug1")
        for _ in range(args.runs - 1):
            ws.reset("bug1")
        after = [e.seconds * 1000 for e in ws.journal("bug1", 100) if e.op == "check" and e.seconds is not None]
        config = root / "config" / "app.yaml"
        config.write_text(config.read_text().replace("shipping_fee: 4.90", "shipping_fee: 5.90"))
        rows = [
            ("check row after fork/reset (journal)", statistics.median(after)),
            ("Workspace.check('bug1')", median_ms(lambda: ws.check("bug1"), args.runs)),
            ("Workspace.drift() (1 file drifted)", median_ms(ws.drift, args.runs)),
            ("Workspace.postmortem(['bug1']) + Markdown",
             median_ms(lambda: markdown(ws.postmortem(["bug1"])), args.runs)),
            ("repro-tui check bug1", cli_ms(root, args.runs, "check", "bug1")),
            ("repro-tui drift", cli_ms(root, args.runs, "drift")),
            ("repro-tui report bug1", cli_ms(root, args.runs, "report", "bug1")),
            ("interpreter + import of the CLI (repro-tui --version)", cli_ms(root, args.runs, "--version")),
        ]
    finally:
        kill_services(root, signal.SIGTERM)
        ws.close()
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
    width = max(len(name) for name, _ in rows)
    print(f"demo shop, {args.orders} orders, medians of {args.runs} runs")
    for name, ms in rows:
        print(f"  {name.ljust(width)}  {ms:8.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
