"""What a read-only command loads: only what it needs. ``repro-tui diff`` and ``list`` run
often (a script, a prompt, a watch); the screen's toolkit, the Docker client, git, the mail
parser and the HTTP client cost tens of milliseconds of start-up each and are loaded only
by the commands that use them. ``bench/bench_diff.py`` measures what this saves."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_cli

HEAVY = ("textual", "rich", "docker", "git", "deepdiff", "email.parser", "urllib.request", "http.client",
         "workbench.tui")
PROBE = """
import json, sys
from workbench.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = {heavy!r}
print("\\nLOADED " + json.dumps(sorted(m for m in heavy if m in sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["diff", "prod", "b1", "--json"], ["list", "--json"], ["status", "b1"]])
def test_a_read_only_command_loads_no_heavy_module(shop, argv):
    assert run_cli("fork", "prod", "b1", cwd=shop).returncode == 0
    r = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv], cwd=shop, capture_output=True,
                       text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip(), r.stderr          # the command did its work
    loaded = json.loads(r.stderr.rsplit("LOADED ", 1)[1])
    assert loaded == [], f"{' '.join(argv)} loaded {loaded}"
