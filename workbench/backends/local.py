"""The local backend: services are processes, each in its own process group, with a
pid file and a log file under ``.repro/run/ENV/``. They keep running after repro-tui
exits, as containers do."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.backends.base import Backend, EnvContext, Progress, ServiceStatus
from workbench.errors import BackendError
from workbench.private import user_umask
from workbench.secrets import SecretPolicy, secret_values
from workbench.spec import ServiceSpec

STOP_GRACE = 5.0
# The first process of a service: workbench.logpump, found where this very package is
# (whatever the service's PYTHONPATH says, which is left as the service's own).
_PUMP = "import sys; sys.path.insert(0, sys.argv[1]); from workbench.logpump import main; sys.exit(main(sys.argv[2:]))"
_HOME = str(Path(__file__).resolve().parents[2])


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _proc_start_time(pid: int) -> str | None:
    """The kernel's start time of a process: guards against a reused pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def kill_services(root: Path, sig: int = signal.SIGKILL) -> None:
    """Signal the process group of every service the workspace at ``root`` records in its
    pid files, without opening the workspace: tests, benchmarks and the screenshot script
    tidy up with it (users run ``repro-tui stop``). A pid that names another process by now
    is left alone."""
    for pid_file in (root / ".repro" / "run").glob("*/*.pid"):
        try:
            info = json.loads(pid_file.read_text())
            pid = int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _alive(pid) or info.get("start") not in (None, _proc_start_time(pid)):
            continue
        try:
            os.killpg(pid, sig)
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


def free_port(avoid: set[int]) -> int:
    import socket

    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port
    raise BackendError("no free TCP port on 127.0.0.1.")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def spawn(run_dir: Path, name: str, argv: list[str], env: dict[str, str], cwd: Path, port: int | None,
          what: str, mask: dict[str, Any] | None = None, umask: int = -1) -> subprocess.Popen:
    """Start a process of an environment in its own process group, its output appended to
    ``run_dir/NAME.log`` (masked by its log pump, ``workbench.logpump``, with the secrets of
    ``mask``) and its pid recorded in ``run_dir/NAME.pid`` before it runs: if repro-tui is
    killed in between, it exits instead of running unrecorded (no stop, destroy or recovery
    could find it)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log = open(run_dir / f"{name}.log", "ab")
    log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {what}\n".encode())
    log.flush()
    gate_r, gate_w = os.pipe()
    try:
        proc = subprocess.Popen([sys.executable, "-c", _PUMP, _HOME, str(gate_r), *argv], cwd=cwd, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, pass_fds=(gate_r,), umask=umask)
    except OSError as exc:
        os.close(gate_w)
        raise BackendError(f"cannot start {what}: {exc.strerror}: {exc.filename or argv[0]}") from None
    finally:
        log.close()
        os.close(gate_r)
    try:
        (run_dir / f"{name}.pid").write_text(json.dumps(
            {"pid": proc.pid, "start": _proc_start_time(proc.pid), "started_at": time.time(), "port": port}))
        _write_all(gate_w, b"1" + json.dumps(mask or {}).encode())
    finally:
        os.close(gate_w)
    return proc


def running_pid(run_dir: Path, name: str) -> int | None:
    """The pid of a recorded process of an environment that still runs (not a reused pid)."""
    try:
        info = json.loads((run_dir / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None
    pid = info.get("pid") if isinstance(info, dict) else None
    if pid and _alive(pid) and _proc_start_time(pid) == info.get("start"):
        return int(pid)
    return None


def stop_process(run_dir: Path, name: str, grace: float = STOP_GRACE) -> None:
    """TERM to a recorded process's group, KILL after ``grace`` (at once, with no TERM, when
    ``grace`` is 0: what is thrown away need not be asked); its pid file removed."""
    pid = running_pid(run_dir, name)
    if pid:
        steps = ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)) if grace > 0 else ((signal.SIGKILL, 2.0),)
        for sig, wait in steps:
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            except PermissionError:
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.02)
            if not _alive(pid):
                break
    (run_dir / f"{name}.pid").unlink(missing_ok=True)


class LocalBackend(Backend):
    name = "local"

    # settings -----------------------------------------------------------------
    def allocate_ports(self, ctx: EnvContext, avoid: set[int]) -> dict[str, int]:
        used = set(avoid)
        out = {}
        for name, svc in ctx.services.items():
            if svc.port:
                out[name] = free_port(used)
                used.add(out[name])
        return out

    def service_env(self, ctx: EnvContext, svc: ServiceSpec) -> dict[str, str]:
        env = dict(svc.env)
        if not ctx.is_prod:
            env.update(ctx.env_overrides)
            env.update(ctx.service_overrides.get(svc.name, {}).get("env", {}))
        return {k: self.expand(ctx, v) for k, v in env.items()}

    def expand(self, ctx: EnvContext, text: str, quote: bool = False) -> str:
        q = shlex.quote if quote else (lambda s: s)
        values = {"port": str(ctx.ports.get("__current__", "")), "env": ctx.name, "worktree": q(str(ctx.worktree)),
                  "python": q(sys.executable)}
        for name, port in ctx.ports.items():
            values[f"ports.{name}"] = str(port)
        for name, path in ctx.store_paths.items():
            values[f"stores.{name}.path"] = q(path)
        if not ctx.is_prod:   # {mail.host}, {mail.port}: the clone's mail sink
            from workbench.backends import edge_process

            values.update(edge_process.values(ctx.run_dir))
        out = text
        for key, value in values.items():
            out = out.replace("{" + key + "}", value)
        return out

    def command(self, ctx: EnvContext, svc: ServiceSpec) -> list[str]:
        template = svc.command
        if not ctx.is_prod and "command" in ctx.service_overrides.get(svc.name, {}):
            template = ctx.service_overrides[svc.name]["command"]
        sub = EnvContext(**{**ctx.__dict__, "ports": {**ctx.ports, "__current__": ctx.ports.get(svc.name, "")}})
        if isinstance(template, list):
            argv = [self.expand(sub, str(a)) for a in template]
        else:
            argv = shlex.split(self.expand(sub, str(template), quote=True))
        if argv and argv[0] in ("python", "python3"):
            argv[0] = sys.executable  # the interpreter repro-tui runs on: `python` may not be on PATH
        return argv

    # files ----------------------------------------------------------------------
    def _pid_file(self, ctx: EnvContext, service: str) -> Path:
        return ctx.run_dir / f"{service}.pid"

    def log_file(self, ctx: EnvContext, service: str) -> Path:
        return ctx.run_dir / f"{service}.log"

    def _read_pid(self, ctx: EnvContext, service: str) -> dict | None:
        try:
            return json.loads(self._pid_file(ctx, service).read_text())
        except (OSError, ValueError):
            return None

    def _running_pid(self, ctx: EnvContext, service: str) -> int | None:
        return running_pid(ctx.run_dir, service)

    # operations -----------------------------------------------------------------
    def start(self, ctx: EnvContext, progress: Progress | None = None) -> None:
        ctx.run_dir.mkdir(parents=True, exist_ok=True)
        if not ctx.is_prod:   # the clone's mail sink first: its services may mail as they start
            from workbench.backends import edge_process

            if progress and not edge_process.running(ctx.run_dir):
                progress("starting the mail sink")
            edge_process.start(ctx.run_dir, ctx.name,
                               edge_process.plan(ctx.run_dir, "127.0.0.1", set(ctx.ports.values())))
        started: list[str] = []
        for name in self._order(ctx):
            svc = ctx.services[name]
            if self._running_pid(ctx, name):
                continue
            if progress:
                progress(f"starting {name}")
            port = ctx.ports.get(name)
            deadline = time.monotonic() + 2.0  # a service just stopped may take a moment to let go of it
            while port and port_open(port) and time.monotonic() < deadline:
                time.sleep(0.05)
            if port and port_open(port):
                raise BackendError(
                    f"cannot start {ctx.name}/{name}: port {port} on 127.0.0.1 is already in use.",
                    f"Stop what uses it (ss -ltnp | grep :{port}), or change the port in repro.yaml.")
            argv = self.command(ctx, svc)
            own = self.service_env(ctx, svc)
            env = {**os.environ, **own}
            if port:
                env["PORT"] = str(port)
            cwd = ctx.worktree / svc.cwd if svc.cwd else ctx.worktree
            if not ctx.is_prod:   # a clone's process: its own folders and data, never prod's
                cwd = self.fence.process(ctx.name, cwd, argv, own)
                for location in ctx.store_paths.values():
                    self.fence.data(ctx.name, location)
            exe = argv[0] if os.sep in argv[0] else shutil.which(argv[0], path=env.get("PATH"))
            if not exe or not os.access(cwd / exe, os.X_OK):
                raise BackendError(f"cannot start {ctx.name}/{name}: no such program: {argv[0]}",
                                   f"Check 'command' of service '{name}' in repro.yaml.")
            proc = spawn(ctx.run_dir, name, argv, env, cwd, port, f"{name} in {ctx.name}",
                         mask=self._pump_config(ctx), umask=user_umask() if ctx.is_prod else -1)
            started.append(name)
            self._wait_healthy(ctx, name, svc, proc)

    def _order(self, ctx: EnvContext) -> list[str]:
        done: list[str] = []

        def visit(n: str, seen: set[str]) -> None:
            if n in done or n in seen:
                return
            seen.add(n)
            for dep in ctx.services[n].depends_on:
                if dep in ctx.services:
                    visit(dep, seen)
            done.append(n)

        for n in ctx.services:
            visit(n, set())
        return done

    def _wait_healthy(self, ctx: EnvContext, name: str, svc: ServiceSpec, proc: subprocess.Popen) -> None:
        port = ctx.ports.get(name)
        deadline = time.monotonic() + svc.start_timeout
        delay = 0.01
        while True:
            code = proc.poll()
            if code is not None:
                self._pid_file(ctx, name).unlink(missing_ok=True)
                raise BackendError(f"{ctx.name}/{name} exited with code {code} while starting. Its last lines:\n"
                                   + self.tail(ctx, name, 5),
                                   f"Full log: repro-tui logs {ctx.name} {name}")
            if svc.health.kind == "none" or not port:
                return
            if svc.health.kind == "tcp" and port_open(port):
                return
            if svc.health.kind == "http" and port_open(port):
                import urllib.error  # here: urllib (http.client, ssl) costs 5 ms of every command's start
                import urllib.request

                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{svc.health.path}", timeout=1) as r:
                        if r.status < 500:
                            return
                except urllib.error.HTTPError as exc:
                    if exc.code < 500:
                        return
                except (OSError, urllib.error.URLError):
                    pass
            if time.monotonic() > deadline:
                self._stop_one(ctx, name)
                raise BackendError(
                    f"{ctx.name}/{name} did not become healthy within {svc.start_timeout:.0f} s "
                    f"({svc.health.kind} on port {port}). Its last lines:\n" + self.tail(ctx, name, 5),
                    "Raise start_timeout in repro.yaml, or check the log: repro-tui logs " + ctx.name)
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def tail(self, ctx: EnvContext, name: str, lines: int) -> str:
        try:
            with open(self.log_file(ctx, name), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 16384))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return "  (no log)"
        policy, values = self._log_secrets(ctx)
        text = policy.redact_text(text, values)
        return "\n".join("  " + line for line in text.splitlines()[-lines:])

    def _log_secrets(self, ctx: EnvContext) -> tuple[SecretPolicy, list[str]]:
        """The secret values a log may hold: those of the services as they are now, those of
        the workspace's own definitions (a clone's log keeps what it ran with before a change),
        and every value the workspace's redactor knows (config files, .env, other clones)."""
        policy = self.policy
        values: list[str] = list(self.redactor.values()) if self.redactor else []
        for svc in [*ctx.services.values(), *self.spec.services.values()]:
            values += secret_values(self.service_env(ctx, svc), policy)
        return policy, values

    def _pump_config(self, ctx: EnvContext) -> dict:
        """What the log pump of a service masks its output with (sent through a pipe, never argv)."""
        policy, values = self._log_secrets(ctx)
        return {"key": policy.key.decode("utf-8", "surrogateescape"), "extra": sorted(policy.extra),
                "allowed": sorted(policy.allowed), "values": sorted(set(values))}

    def _stop_one(self, ctx: EnvContext, name: str, grace: float = STOP_GRACE) -> None:
        stop_process(ctx.run_dir, name, grace)

    def _stop_services(self, ctx: EnvContext, progress: Progress | None, grace: dict[str, float] | None) -> None:
        """Every service, the last started first; ``grace``: seconds by service for a state that
        is thrown away (missing: killed at once), or None for a plain, graceful stop."""
        names = list(reversed(self._order(ctx)))
        # also stop services that ran but are no longer declared (a pid file without a service)
        if ctx.run_dir.exists():
            names += [p.stem for p in ctx.run_dir.glob("*.pid") if p.stem not in names and not p.stem.startswith("_")]
        for name in names:
            if progress and self._running_pid(ctx, name):
                progress(f"stopping {name}")
            self._stop_one(ctx, name, STOP_GRACE if grace is None else grace.get(name, 0.0))

    def stop(self, ctx: EnvContext, progress: Progress | None = None) -> None:
        self._stop_services(ctx, progress, None)
        from workbench.backends import edge_process  # the mail sink last, as it came first

        edge_process.stop(ctx.run_dir)

    def stop_for_reset(self, ctx: EnvContext, progress: Progress | None = None) -> None:
        """A reset throws the services' state away: they are killed at once (unless
        ``clone.stop_grace`` gives one time), and the mail sink keeps running."""
        self._stop_services(ctx, progress, self.spec.stop_grace)

    def status(self, ctx: EnvContext) -> dict[str, ServiceStatus]:
        out = {}
        for name in ctx.services:
            info = self._read_pid(ctx, name)
            pid = self._running_pid(ctx, name)
            if pid:
                state = "running"
            elif info:
                state = "crashed"
            else:
                state = "stopped"
            out[name] = ServiceStatus(name=name, state=state, port=ctx.ports.get(name), pid=pid,
                                      started_at=info.get("started_at") if info and pid else None)
        return out

    def logs(self, ctx: EnvContext, service: str, follow: bool = False, lines: int = 200) -> Iterator[str]:
        path = self.log_file(ctx, service)
        policy, values = self._log_secrets(ctx)
        if not path.exists():
            return
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 256 * 1024))
            chunk = f.read().decode("utf-8", "replace").splitlines()
            for line in chunk[-lines:]:
                yield policy.redact_text(line, values)
            while follow:
                line_b = f.readline()
                if not line_b:
                    time.sleep(0.2)
                    continue
                yield policy.redact_text(line_b.decode("utf-8", "replace").rstrip("\n"), values)

    def destroy(self, ctx: EnvContext, progress: Progress | None = None) -> None:
        self._stop_services(ctx, progress, self.spec.stop_grace)
        from workbench.backends import edge_process

        edge_process.stop(ctx.run_dir)

    def describe(self, ctx: EnvContext) -> dict[str, dict]:
        return {name: {"command": svc.command, "env": self.service_env(ctx, svc), "port": ctx.ports.get(name)}
                for name, svc in ctx.services.items()}
