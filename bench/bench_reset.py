"""Times a reset whose services ignore SIGTERM, as many real ones do, side by side with the
graceful stop resets used to make.

    .venv/bin/python bench/bench_reset.py [--runs 5] [--skip-docker]

1. Docker: a compose-like prod of PostgreSQL and an app container whose PID 1 (busybox
   httpd, no init) ignores SIGTERM. A clone is reset to its ``forked`` snapshot end to end
   (services stopped, data swapped, services started and healthy): as now (what a reset
   throws away is killed at once, the database server kept running) and with
   ``clone.stop_grace: {app: 10}`` — ``docker stop``'s own 10 s, what every reset waited
   before.
2. Local: a service that ignores SIGTERM, reset as now and with ``clone.stop_grace: {web: 5}``
   (the grace every stop gave before).

Docker needs an engine and the test images (``REPRO_TEST_DOCKER=1 scripts/test-setup.sh``).
Prints medians and ratios as a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from bench_docker import git_init, make_workspace  # noqa: E402 - after the path

from workbench.backends.local import free_port  # noqa: E402

PG_IMAGE = os.environ.get("REPRO_TEST_PG_IMAGE", "repro-test/postgres:15")
BUSYBOX_IMAGE = os.environ.get("REPRO_TEST_BUSYBOX_IMAGE", "repro-test/busybox:latest")
IGNORES_TERM = ("import http.server, signal, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), "
                "http.server.SimpleHTTPRequestHandler).serve_forever()")


def sh(cmd: str) -> str:
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True).stdout.strip()


def time_resets(root: Path, env: str, grace: str, runs: int) -> list[float]:
    """Reset ``env`` ``runs`` times with ``grace`` as the root repro.yaml's clone.stop_grace."""
    from workbench.workspace import Workspace

    spec = root / "repro.yaml"
    base = spec.read_text().split("# stop_grace\n")[0]
    spec.write_text(base + (f"# stop_grace\n{grace}" if grace else ""))
    ws = Workspace(root)
    try:
        times = []
        for _ in range(runs):
            ws.make_ready(env, "forked")   # the background copy of the last reset is done, as a user finds it
            t0 = time.perf_counter()
            ws.reset(env, "forked")
            times.append(time.perf_counter() - t0)
        return times
    finally:
        ws.close()


def docker_stack(tag: str, root: Path) -> list[str]:
    made = []
    sh(f"docker network create {tag}_default >/dev/null")
    sh(f"docker run -d --name {tag}_db_1 --network {tag}_default -e POSTGRES_DB=shop "
       f"-l com.docker.compose.project={tag} -l com.docker.compose.service=db "
       f"-l com.docker.compose.container-number=1 -l com.docker.compose.oneoff=False {PG_IMAGE} >/dev/null")
    made.append(f"{tag}_db_1")
    # PID 1 without an init: the kernel does not deliver SIGTERM to it (httpd sets no handler)
    sh(f"docker run -d --name {tag}_app_1 --network {tag}_default -p 127.0.0.1::8080 "
       f"-l com.docker.compose.project={tag} -l com.docker.compose.service=app "
       f"-l com.docker.compose.container-number=1 -l com.docker.compose.oneoff=False "
       f"{BUSYBOX_IMAGE} httpd -f -p 8080 -h / >/dev/null")
    made.append(f"{tag}_app_1")
    for _ in range(600):
        if subprocess.run(["docker", "exec", f"{tag}_db_1", "pg_isready", "-q", "-h", "/var/run/postgresql"],
                          capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    sh(f"docker exec -u postgres {tag}_db_1 psql -q -d shop -c "
       "\"CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 100000) g\"")
    make_workspace(tag, root, database="shop")
    return made


def local_workspace(root: Path) -> None:
    root.mkdir(parents=True)
    (root / "app.py").write_text(IGNORES_TERM.replace("; ", "\n") + "\n")
    (root / "data").mkdir()
    import sqlite3

    con = sqlite3.connect(root / "data" / "shop.db")
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT)")
    con.executemany("INSERT INTO orders VALUES (?, ?)", [(i, f"order {i}") for i in range(10_000)])
    con.commit()
    con.close()
    (root / ".gitignore").write_text("data/\n")
    (root / "repro.yaml").write_text(textwrap.dedent(f"""\
        name: bench
        backend: local
        services:
          web:
            command: python app.py {{port}}
            port: {free_port(set())}
            health: tcp
        stores:
          db: {{type: sqlite, path: data/shop.db}}
        """))
    git_init(root)


def row(what: str, now: list[float], before: list[float], before_what: str) -> str:
    n, b = statistics.median(now), statistics.median(before)
    return f"| {what} | {n:.2f} s | {b:.2f} s ({before_what}) | {b / n:.1f}x |"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--skip-docker", action="store_true")
    opts = ap.parse_args()
    os.environ.pop("REPRO_READY", None)
    from workbench.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="repro-bench-reset-"))
    rows = []
    try:
        root = tmp / "local"
        local_workspace(root)
        ws = Workspace(root)
        ws.fork("prod", "b1")
        ws.close()
        now = time_resets(root, "b1", "", opts.runs)
        before = time_resets(root, "b1", "clone:\n  stop_grace: {web: 5}\n", opts.runs)
        rows.append(row("local: a service that ignores SIGTERM", now, before, "grace 5 s, as every stop was"))
        ws = Workspace(root)
        ws.destroy("b1", force=True)
        ws.close()
        if not opts.skip_docker:
            tag = "rb" + uuid.uuid4().hex[:6]
            made = docker_stack(tag, tmp / "docker")
            try:
                root = tmp / "docker"
                ws = Workspace(root)
                ws.fork("prod", "b1")
                ws.close()
                now = time_resets(root, "b1", "", opts.runs)
                before = time_resets(root, "b1", "clone:\n  stop_grace: {app: 10}\n", opts.runs)
                rows.append(row("docker: PostgreSQL + an app whose PID 1 ignores SIGTERM", now, before,
                                "docker stop's 10 s, as every reset was"))
                ws = Workspace(root)
                ws.destroy("b1", force=True)
                ws.close()
            finally:
                sh(f"docker rm -f -v {' '.join(made)} >/dev/null; docker network rm {tag}_default >/dev/null")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()[0]
    print(f"\n| reset end to end (median of {opts.runs}; load {load:.1f}) | now: killed | graceful stop | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for r in rows:
        print(r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
