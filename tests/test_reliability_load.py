"""Load: twenty running clones in one workspace. `list` must stay quick (bench/bench_load.py
measures the medians against the 200 ms target; this only guards against a gross
regression) and every clone must be listed whole, with its service running."""

from __future__ import annotations

import json
import statistics
import time

import pytest

from tests.conftest import run_cli
from tests.test_reliability_checks import Invariants

CLONES = 20


@pytest.mark.slow
def test_twenty_clones_list_quickly(ws, shop):
    for i in range(CLONES):
        ws.fork("prod", f"c{i:02d}")
    ws.snapshot("c10", "s1")
    t0 = time.perf_counter()
    envs = ws.list_envs()
    in_process = time.perf_counter() - t0
    ws.close()
    assert [e.name for e in envs] == ["prod", *[f"c{i:02d}" for i in range(CLONES)]]
    assert all(e.state == "running" for e in envs[1:]), [(e.name, e.state) for e in envs]
    assert in_process < 1.0, f"Workspace.list_envs() took {in_process:.2f} s with {CLONES} clones"
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = run_cli("list", "--json", cwd=shop)
        times.append(time.perf_counter() - t0)
        assert r.returncode == 0 and len(json.loads(r.stdout)) == CLONES + 1, r.stderr
    assert statistics.median(times) < 2.0, f"repro-tui list took {statistics.median(times):.2f} s (median)"
    assert len(Invariants.record(shop).check()) == CLONES
