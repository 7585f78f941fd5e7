"""Times the PostgreSQL data diff on tables without a primary key.

    .venv/bin/python bench/bench_pg_keys.py [--rows 1000000] [--runs 3]

Two databases in one server of the test image, the second a copy of the first with 100
rows changed in each table: ``logs`` has no key at all (rows compared as a multiset),
``uq`` a unique key on a nullable column (rows found by it). Prints the median time of
the differ (``diff_databases``, one table at a time) and the changes it found.

Needs a Docker engine and the test images (``REPRO_TEST_DOCKER=1 scripts/test-setup.sh``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    opts = ap.parse_args()
    import docker

    from tests.pg_pair import copy_database, pg_server
    from workbench.diff.postgres_rows import Side, diff_databases

    with pg_server(docker.from_env()) as server:
        server.psql("CREATE DATABASE prod")
        server.psql(f"CREATE TABLE logs (at int, msg text, n numeric(12,2));"
                    f"INSERT INTO logs SELECT g, md5(g::text), g / 100.0 FROM generate_series(1, {opts.rows}) g;"
                    f"CREATE TABLE uq (id int UNIQUE, email text, n numeric(12,2));"
                    f"INSERT INTO uq SELECT g, md5(g::text), g / 100.0 FROM generate_series(1, {opts.rows}) g;"
                    f"VACUUM ANALYZE", "prod")
        copy_database(server, "prod", "clone")
        every = max(1, opts.rows // 100)
        server.psql(f"UPDATE logs SET msg = 'x' WHERE at % {every} = 7; "
                    f"UPDATE uq SET email = 'x' WHERE id % {every} = 7", "clone")
        print(f"| table ({opts.rows:,} rows, 100 changed, median of {opts.runs}) | diff | changes |")
        print("| --- | --- | --- |")
        for table, what in (("logs", "no key (a multiset)"), ("uq", "a unique key, no primary key")):
            times = []
            for _ in range(opts.runs):
                t0 = time.perf_counter()
                changes, _ = diff_databases("db", Side(server, "prod"), Side(server, "clone"),
                                            tables=lambda t, table=table: t == table)
                times.append(time.perf_counter() - t0)
            print(f"| `{table}`: {what} | {statistics.median(times):.2f} s | {len(changes)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
