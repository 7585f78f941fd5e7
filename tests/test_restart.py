"""restart, "restart needed", and prod's services only after a typed confirmation.

Real clones with real service processes; the command line as a user runs it, in a pipe
and in a real pseudo-terminal (where it asks).
"""

from __future__ import annotations

import json
import os
import signal
import time

from tests.conftest import ROOT, run_cli
from tests.terminal import REPRO_TUI, PtyProgram
from workbench.workspace import Workspace


def pid_of(ws: Workspace, env: str) -> int:
    return ws.status(env).services["web"]["pid"]


def test_a_config_edit_says_restart_needed_until_restarted(ws):
    ws.fork("prod", "b1")
    assert ws.status("b1").restart_needed == []
    time.sleep(0.05)
    (ws.worktree("b1") / "config" / "app.yaml").write_text("feature:\n  rounding: round\ncurrency: EUR\n")
    assert ws.status("b1").restart_needed == ["config/app.yaml"]
    spec = ws.worktree("b1") / "repro.yaml"
    spec.write_text(spec.read_text().replace("MODE: live", "MODE: debug"))
    assert [e.restart_needed for e in ws.list_envs() if e.name == "b1"] == [["config/app.yaml", "repro.yaml"]]
    shown = run_cli("status", "b1", cwd=ws.root)
    assert "restart needed: config/app.yaml, repro.yaml changed since the services started" in shown.stdout
    assert "repro-tui restart b1" in run_cli("list", cwd=ws.root).stdout
    before = pid_of(ws, "b1")
    r = run_cli("restart", "b1", cwd=ws.root)
    assert r.returncode == 0 and "b1: running" in r.stdout, r.stderr
    after = ws.status("b1")
    assert after.restart_needed == [] and after.services["web"]["pid"] != before
    assert after.services["web"]["pid"]
    entry = ws.journal("b1")[0]
    assert (entry.op, entry.outcome, [s["step"] for s in entry.steps]) == \
        ("restart", "ok", ["services stopped", "services started"])
    assert ws.status("prod").restart_needed == []                  # prod runs nothing here: nothing to restart


def test_a_restart_cut_off_after_the_stop_is_finished_by_the_next_command(ws):
    ws.fork("prod", "b1")
    cut = run_cli("restart", "b1", cwd=ws.root, env={"REPRO_FAULT": "restart:services stopped"})
    assert cut.returncode == -signal.SIGKILL
    assert ws.status("b1").state == "stopped"
    run_cli("list", cwd=ws.root)                                      # any command recovers it
    assert ws.status("b1").state == "running"
    assert ws.journal("b1")[0].outcome == "completed-by-recovery"


def test_a_restart_whose_service_cannot_start_says_why_and_is_not_retried(ws):
    ws.fork("prod", "b1")
    spec = ws.worktree("b1") / "repro.yaml"
    spec.write_text(spec.read_text().replace("python -m http.server", "python -m no_such_module_here"))
    r = run_cli("restart", "b1", cwd=ws.root)
    assert r.returncode == 1 and "exited with code" in r.stderr and "Traceback" not in r.stderr
    assert ws.journal("b1")[0].outcome == "failed" and ws.pending() == []


def test_prod_services_need_a_typed_confirmation(ws):
    root = ws.root
    for command in ("start", "stop", "restart"):
        r = run_cli(command, "prod", cwd=root)                        # no terminal, no --yes
        assert r.returncode == 2, (command, r.stderr)
        assert f"{command} prod needs a confirmation" in r.stderr and f"repro-tui {command} prod --yes" in r.stderr
    assert ws.status("prod").state == "stopped" and ws.journal() == []
    assert run_cli("start", "prod", "--yes", cwd=root).returncode == 0
    assert ws.status("prod").state == "running"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm"}
    term = PtyProgram([str(REPRO_TUI), "stop", "prod"], cwd=root, env=env)
    try:                                                # on a terminal it asks; a wrong answer stops it
        term.wait_for("Type prod to confirm")
        term.type("prd\r")
        assert term.proc.wait(timeout=30) == 1
        assert "left as they are" in term.text()
    finally:
        term.close()
    assert ws.status("prod").state == "running"
    term = PtyProgram([str(REPRO_TUI), "stop", "prod"], cwd=root, env=env)
    try:
        term.wait_for("Type prod to confirm")
        term.type("prod\r")
        assert term.proc.wait(timeout=30) == 0
    finally:
        term.close()
    assert ws.status("prod").state == "stopped"
    ws.fork("prod", "b1")
    assert run_cli("stop", "b1", cwd=root).returncode == 0           # a clone's: no question
    assert json.loads(run_cli("start", "b1", "--json", cwd=root).stdout)["state"] == "running"
