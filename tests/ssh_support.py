"""A real ``sshd`` of the test's own (its own port, host key and authorised key) and clients
of it in real pseudo-terminals: the screen as an on-call engineer reaches it.

openssh-server is installed by ``scripts/test-setup.sh`` under ``CI=true``; elsewhere a
machine without ``sshd`` skips these tests (and says how to enable them). Under CI its
absence is a failure, never a skip.
"""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.terminal import REPRO_TUI, ROOT, PtyProgram


def find_sshd() -> str:
    found = shutil.which("sshd", path=os.pathsep.join(["/usr/sbin", "/usr/local/sbin", os.environ.get("PATH", "")]))
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("sshd is missing: scripts/test-setup.sh installs openssh-server under CI=true")
    pytest.skip("sshd is not installed (apt-get install openssh-server), so the SSH tests cannot run here")


class Sshd:
    def __init__(self, folder: Path) -> None:
        folder.mkdir()
        self.folder = folder
        self.user = getpass.getuser()
        self.port = free_port()
        for key in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)], check=True)
        (folder / "authorized_keys").write_bytes((folder / "client.pub").read_bytes())
        (folder / "authorized_keys").chmod(0o600)
        (folder / "sshd_config").write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {folder / 'host'}",
            f"AuthorizedKeysFile {folder / 'authorized_keys'}", f"PidFile {folder / 'sshd.pid'}",
            "StrictModes no", "UsePAM no", "PermitRootLogin prohibit-password", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "LogLevel ERROR", ""]))
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)   # its privilege separation folder
        self.log = open(folder / "sshd.log", "ab")  # noqa: SIM115 - open while the server runs
        self.proc = subprocess.Popen([find_sshd(), "-D", "-e", "-f", str(folder / "sshd_config")], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while subprocess.run(["ssh", *self.options(), "true"], capture_output=True).returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"sshd did not answer: {(folder / 'sshd.log').read_text()[-1000:]}")
            time.sleep(0.1)

    def options(self) -> list[str]:
        return ["-p", str(self.port), "-i", str(self.folder / "client"), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                f"{self.user}@127.0.0.1"]

    def screen(self, workspace: Path, pid_file: Path, **env: str) -> PtyProgram:
        """``repro-tui`` on ``workspace`` over SSH, in an 80x24 terminal; the
        remote screen's pid is written to ``pid_file``."""
        settings = {"PYTHONPATH": str(ROOT), "TERM": "xterm-256color", **env}
        remote = (f"cd {shlex.quote(str(workspace))} && echo $$ > {shlex.quote(str(pid_file))} && exec env "
                  + " ".join(f"{k}={shlex.quote(v)}" for k, v in settings.items()) + f" {shlex.quote(str(REPRO_TUI))}")
        local = {k: v for k, v in os.environ.items() if not k.startswith("REPRO_")}
        local["TERM"] = "xterm-256color"
        return PtyProgram(["ssh", "-tt", *self.options(), remote], cwd=workspace, env=local)

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except OSError:
            pass
        self.proc.wait(timeout=10)
        self.log.close()
