"""Times the docker backend and the PostgreSQL store against the usual ways, side by side.

    .venv/bin/python bench/bench_docker.py [--gb 1.0] [--runs 3]

1. fork of a stack whose PostgreSQL holds ~1 GB (online pg_basebackup through the Engine
   API, into the clone's volume, the clone started) against ``pg_dump -Fc | pg_restore``
   into a fresh container of the same image;
2. reset of that clone (the ready copy swapped in by rename), end to end and the swap alone;
3. data diff of a 1M-row table with 100 changed rows between prod's server and the clone's
   against reladiff (``pip install 'reladiff[postgresql]'``, for the bench only).

Needs a Docker engine and the test images (``REPRO_TEST_DOCKER=1 scripts/test-setup.sh``).
Prints the medians and ratios as a Markdown table.
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

PG_IMAGE = os.environ.get("REPRO_TEST_PG_IMAGE", "repro-test/postgres:15")


def sh(cmd: str) -> str:
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True).stdout.strip()


def psql(container: str, sql: str, db: str = "bench") -> str:
    return subprocess.run(["docker", "exec", "-u", "postgres", container, "psql", "-X", "-A", "-t", "-q",
                           "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql], check=True, capture_output=True,
                          text=True).stdout.strip()


def wait_pg(container: str) -> None:
    for _ in range(600):
        if subprocess.run(["docker", "exec", container, "pg_isready", "-q", "-h", "/var/run/postgresql"],
                          capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise SystemExit(f"{container} did not start")


def make_prod(tag: str, gb: float) -> str:
    name = f"{tag}_db_1"
    sh(f"docker volume create {tag}_pgdata >/dev/null")
    sh(f"docker run -d --name {name} -p 127.0.0.1::5432 -v {tag}_pgdata:/var/lib/postgresql/data "
       f"-e POSTGRES_DB=bench -l com.docker.compose.project={tag} -l com.docker.compose.service=db "
       f"-l com.docker.compose.container-number=1 -l com.docker.compose.oneoff=False {PG_IMAGE}")
    wait_pg(name)
    # ~1 GB: rows of ~120 bytes with a primary key, plus the 1M-row table the diff compares
    rows = int(gb * 7_000_000)
    psql(name, "CREATE TABLE events (id bigint PRIMARY KEY, kind text, payload text, at timestamptz)")
    step = 1_000_000
    for lo in range(1, rows + 1, step):
        hi = min(rows, lo + step - 1)
        psql(name, f"INSERT INTO events SELECT g, 'k' || (g % 17), md5(g::text) || md5((g * 7)::text), "
                   f"timestamptz '2024-01-01' + g * interval '1 second' FROM generate_series({lo}, {hi}) g")
    psql(name, "CREATE TABLE accounts (id integer PRIMARY KEY, email text, balance numeric(12,2), note text)")
    psql(name, "INSERT INTO accounts SELECT g, 'user' || g || '@mail.test', (g % 10000) / 100.0, md5(g::text) "
               "FROM generate_series(1, 1000000) g")
    psql(name, "VACUUM ANALYZE")
    psql(name, "CHECKPOINT")   # the load's dirty pages written now, not by the first copy timed
    time.sleep(5)
    return name


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def bench_dump_restore(prod: str, runs: int) -> list[float]:
    times = []
    for i in range(runs):
        fresh = f"{prod}-dump{i}"
        t0 = time.perf_counter()
        sh(f"docker run -d --name {fresh} -e POSTGRES_DB=bench {PG_IMAGE} >/dev/null")
        wait_pg(fresh)
        sh(f"docker exec -u postgres {prod} pg_dump -Fc -d bench | "
           f"docker exec -i -u postgres {fresh} pg_restore -d bench --no-owner")
        times.append(time.perf_counter() - t0)
        sh(f"docker rm -f -v {fresh} >/dev/null")
    return times


def bench_basebackup(prod: str, runs: int, to_disk: bool = True) -> list[float]:
    """pg_basebackup alone, inside prod's container: written to a folder on its disk (what a
    copy of prod's cluster costs: read it, write it), or as a tar into /dev/null (reading
    alone)."""
    target = "-D /tmp/bench-copy" if to_disk else "-D - -Ft > /dev/null"
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sh(f"docker exec -u postgres {prod} sh -c "
           "'for d in /usr/lib/postgresql/*/bin; do PATH=$d:$PATH; done; rm -rf /tmp/bench-copy; "
           f"pg_basebackup {target} -X fetch -c fast && sync'")
        times.append(time.perf_counter() - t0)
        sh(f"docker exec -u postgres {prod} rm -rf /tmp/bench-copy")
    return times


def git_init(root: Path) -> None:
    """The folder as a git repository with one commit of what it holds."""
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@b.invalid",
                                                                "commit", "-q", "-m", "bench"]):
        subprocess.run(["git", *args], cwd=root, check=True)


def make_workspace(tag: str, root: Path, database: str = "bench") -> None:
    """A workspace whose prod is the compose project ``tag`` and its PostgreSQL ``database``."""
    root.mkdir(parents=True)
    (root / "repro.yaml").write_text(textwrap.dedent(f"""\
        name: bench
        backend: docker
        prod: {{branch: main, compose_project: {tag}}}
        stores:
          db: {{type: postgres, service: db, database: {database}, user: postgres}}
        """))
    git_init(root)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", action="append", choices=("fork", "reset", "diff"),
                    help="time only these (repeatable; a clone is forked in any case)")
    opts = ap.parse_args()
    only = set(opts.only or ("fork", "reset", "diff"))
    os.environ.pop("REPRO_READY", None)   # ready copies made in the background, as users get them
    from workbench.diff.postgres_rows import Side, diff_databases
    from workbench.workspace import Workspace

    tag = "bench" + uuid.uuid4().hex[:6]
    tmp = Path(tempfile.mkdtemp(prefix="repro-bench-"))
    prod = make_prod(tag, opts.gb)
    size = int(psql(prod, "SELECT pg_database_size('bench')"))
    print(f"prod database: {size / 1e9:.2f} GB", file=sys.stderr)
    ws = None
    try:
        make_workspace(tag, tmp / "ws")
        ws = Workspace(tmp / "ws")
        fork_times = []
        for i in range(opts.runs if "fork" in only else 1):
            t0 = time.perf_counter()
            ws.fork("prod", f"f{i}")
            fork_times.append(time.perf_counter() - t0)
            ws.make_ready(f"f{i}", "forked")  # waits for the background copy: nothing runs beside the next timing
            if i < len(range(opts.runs if "fork" in only else 1)) - 1:
                ws.destroy(f"f{i}", force=True)
        clone = f"f{len(fork_times) - 1}"
        dump_times = bench_dump_restore(prod, opts.runs) if "fork" in only else []
        base_times = bench_basebackup(prod, opts.runs) if "fork" in only else []
        read_times = bench_basebackup(prod, opts.runs, to_disk=False) if "fork" in only else []

        store = ws.stores["db"]
        ws.make_ready(clone, "forked")
        reset_times, swap_times = [], []
        for _ in range(opts.runs if "reset" in only else 0):
            ws.make_ready(clone, "forked")  # the background copy of the last reset is done, as a user would find it
            t0 = time.perf_counter()
            ws.reset(clone, "forked")
            reset_times.append(time.perf_counter() - t0)
            swap_times.append(store.last_swap_seconds)
            entry = next(e for e in ws.journal(clone, 10) if e.op == "reset")
            print(f"reset: {reset_times[-1]:.2f} s; steps: "
                  + ", ".join(f"{s['step']} {s['seconds']:.2f} s" for s in entry.steps), file=sys.stderr)

        srv, db = store.endpoint(clone)
        psql(srv.name, "UPDATE accounts SET balance = balance + 1 WHERE id % 10000 = 7")  # 100 rows
        prod_side, clone_side = Side(*store.endpoint("prod")), Side(srv, db)
        diff_times = []
        for _ in range(opts.runs if "diff" in only else 0):
            t0 = time.perf_counter()
            changes, _ = diff_databases("db", prod_side, clone_side, tables=lambda t: t == "accounts")
            diff_times.append(time.perf_counter() - t0)
            assert len(changes) == 100, len(changes)

        reladiff = shutil.which("reladiff") or str(Path(sys.executable).parent / "reladiff")
        prod_port = sh(f"docker port {prod} 5432/tcp").splitlines()[0].rsplit(":", 1)[1]
        clone_port = ws.context(clone).ports["db"]
        rd_times = []
        rd_ok = os.path.exists(reladiff) and "diff" in only
        for _ in range(opts.runs if rd_ok else 0):
            t0 = time.perf_counter()
            out = subprocess.run([reladiff, f"postgresql://postgres@127.0.0.1:{prod_port}/bench", "accounts",
                                  f"postgresql://postgres@127.0.0.1:{clone_port}/bench", "accounts", "-k", "id",
                                  "-c", "%"], capture_output=True, text=True)
            rd_times.append(time.perf_counter() - t0)
            lines = [line for line in out.stdout.splitlines() if line.startswith(("+", "-"))]
            assert len(lines) == 200, (out.stdout[-500:], out.stderr[-1000:])

        print(f"\n| operation ({size / 1e9:.2f} GB, median of {opts.runs}) | repro-tui | usual way | ratio |")
        print("| --- | --- | --- | --- |")
        if dump_times:
            f, d = median(fork_times), median(dump_times)
            print(f"| fork (copy + start the clone) | {f:.1f} s | {d:.1f} s (pg_dump -Fc \\| pg_restore) "
                  f"| {d / f:.1f}x |")
        if base_times:
            f, b, r = median(fork_times), median(base_times), median(read_times)
            print(f"| fork against the copy alone | {f:.1f} s | {b:.1f} s (pg_basebackup into a folder) "
                  f"| fork = {f / b:.1f}x the copy |")
            print(f"| fork against reading alone | {f:.1f} s | {r:.1f} s (pg_basebackup -Ft into /dev/null) "
                  f"| fork = {f / r:.1f}x the read |")
        if reset_times:
            print(f"| reset, end to end | {median(reset_times):.2f} s | | |")
            print(f"| reset, the swap (renames) | {median(swap_times) * 1000:.0f} ms | | |")
        if diff_times:
            m = median(diff_times)
            if rd_times:
                r = median(rd_times)
                print(f"| data diff, 1M rows, 100 changed | {m:.2f} s | {r:.2f} s (reladiff) | {r / m:.1f}x |")
            else:
                print(f"| data diff, 1M rows, 100 changed | {m:.2f} s | reladiff not installed | |")
    finally:
        if ws is not None:
            for env in [e.name for e in ws.list_envs() if e.kind == "clone"]:
                ws.destroy(env, force=True)
            ws.close()
        sh(f"docker rm -f -v {prod} >/dev/null; docker volume rm {tag}_pgdata >/dev/null")
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
