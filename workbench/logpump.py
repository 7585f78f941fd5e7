"""The first process of a local service: it waits until repro-tui has recorded it, then
runs the service as its child and writes the service's output to its log, masked.

    python -m workbench.logpump FD PROGRAM [ARG ...]

repro-tui starts it with the service's log as stdout and the reading end of a pipe as FD.
It waits for one byte on FD (sent once the pid file is written: a service repro-tui
could not record never runs), then reads the secret values to mask and the workspace's
key (so masks read as everywhere else) as JSON until FD closes. Nothing of them is on a
command line or in an environment. The service runs in the same process group, so
stopping the group stops both; this process ignores SIGTERM and SIGINT, drains what the
service still prints, and exits with the service's exit code.
"""

from __future__ import annotations

import json
import os
import signal
import sys


def main(argv: list[str]) -> int:
    fd = int(argv[0])
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    os.close(fd)
    if not data:
        return 0   # repro-tui was cut off before it recorded the service: it never runs
    config = json.loads(data[1:] or b"{}")
    program = argv[1:]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.dup2(w, 1)
        os.dup2(w, 2)
        os.close(w)
        try:
            os.execvp(program[0], program)
        except OSError as exc:
            os.write(2, f"cannot start {program[0]}: {exc.strerror}\n".encode())
            os._exit(127)
    os.close(w)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    from workbench.secrets import SecretPolicy, redact

    policy = SecretPolicy(config.get("extra", ()), config.get("allowed", ()), key=config.get("key", "").encode()
                          or None)
    values = config.get("values", [])
    out = sys.stdout.buffer
    pending = b""
    while True:
        try:
            chunk = os.read(r, 65536)
        except InterruptedError:
            continue
        if not chunk:
            break
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            out.write(redact(line.decode("utf-8", "replace"), policy, values).encode() + b"\n")
        out.flush()
    if pending:
        out.write(redact(pending.decode("utf-8", "replace"), policy, values).encode() + b"\n")
        out.flush()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
