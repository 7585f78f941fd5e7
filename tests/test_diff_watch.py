"""The watch loop: a change made by another process is seen within 2 s; idle costs nothing."""

from __future__ import annotations

import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from workbench.diff import DiffSource
from workbench.diff.watch import watch
from workbench.model import Side
from workbench.secrets import SecretPolicy
from workbench.spec import parse_spec

CHINOOK = Path(__file__).parent / "data" / "Chinook_Sqlite.sqlite"
SPEC = "name: shop\nstores:\n  db: {type: sqlite, path: db.sqlite}\nconfig_files: [config/*.yaml]\n"


def setup(tmp_path: Path):
    sides = []
    for name in ("prod", "b1"):
        root = tmp_path / name
        (root / "config").mkdir(parents=True)
        (root / "config" / "app.yaml").write_text("mode: floor\n")
        shutil.copyfile(CHINOOK, root / "db.sqlite")
        sides.append(Side(ref=name, env=name, snapshot=None, kind="prod" if name == "prod" else "clone",
                          config_root=root, services={}, env_overrides={}, service_overrides={}, ports={},
                          store_locations={"db": str(root / "db.sqlite")}, runtime={}))
    ws = DiffSource.of_spec(parse_spec(SPEC, tmp_path / "prod"), SecretPolicy())
    return ws, sides[0], sides[1]


def start(ws, a, b):
    reports: queue.Queue = queue.Queue()
    stop = threading.Event()
    t = threading.Thread(target=watch, args=(ws, a, b, reports.put, stop), kwargs={"interval": 0.5}, daemon=True)
    t.start()
    return reports, stop, t


def test_sees_a_write_by_another_process_within_two_seconds(tmp_path):
    ws, a, b = setup(tmp_path)
    reports, stop, t = start(ws, a, b)
    try:
        first = reports.get(timeout=10)
        assert first.changes() == []
        subprocess.run([sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                        "c.execute(\"UPDATE Genre SET Name = 'Bossa' WHERE GenreId = 3\"); c.commit()",
                        b.store_locations["db"]], check=True)
        written = time.monotonic()
        report = reports.get(timeout=5)
        assert time.monotonic() - written < 2
        assert [c.path for c in report.changes()] == ["db.Genre[3].Name"]
        (Path(b.config_root) / "config" / "app.yaml").write_text("mode: round\n")
        written = time.monotonic()
        report = reports.get(timeout=5)
        assert time.monotonic() - written < 2
        assert {c.path for c in report.changes()} == {"db.Genre[3].Name", "config/app.yaml:mode"}
    finally:
        stop.set()
        t.join(5)
    assert not t.is_alive()


def test_idle_watch_uses_under_two_percent_of_a_core(tmp_path):
    ws, a, b = setup(tmp_path)
    reports, stop, t = start(ws, a, b)
    try:
        reports.get(timeout=10)
        cpu0, wall0 = time.process_time(), time.monotonic()
        time.sleep(3)
        used = (time.process_time() - cpu0) / (time.monotonic() - wall0)
        assert used < 0.02, used
        assert reports.empty()
    finally:
        stop.set()
        t.join(5)


def test_a_burst_of_writes_gives_few_refreshes(tmp_path):
    ws, a, b = setup(tmp_path)
    reports, stop, t = start(ws, a, b)
    try:
        reports.get(timeout=10)
        import sqlite3
        conn = sqlite3.connect(b.store_locations["db"], isolation_level=None)
        for i in range(8):
            conn.execute("UPDATE Genre SET Name = ? WHERE GenreId = 4", (f"v{i}",))
            time.sleep(0.1)
        conn.close()
        time.sleep(2.5)
        got = []
        while not reports.empty():
            got.append(reports.get())
        assert 1 <= len(got) <= 2
        assert got[-1].data[0].right == "v7"
    finally:
        stop.set()
        t.join(5)
