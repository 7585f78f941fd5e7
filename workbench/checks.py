"""Running the checks of ``repro.yaml`` against an environment.

An HTTP check sends its request to one of the environment's services on 127.0.0.1 a few
times (the latency is the median of the runs); a command check runs a command in a
clone's worktree with the clone's environment (``repro-tui shell``'s). Prod only ever
receives GET or HEAD: ``repro.yaml`` refuses anything else when it is read, and
``send`` refuses it again here, the one place a request leaves. Redirects are not followed
and no proxy is used, so a request reaches exactly the service it names.

The ``check`` operation (``workbench.ops.check``) runs these and keeps the results.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workbench.check_results import CheckResult, median
from workbench.errors import ProdReadOnly, ReproError
from workbench.names import PROD
from workbench.spec import PROD_METHODS, CheckSpec

if TYPE_CHECKING:
    from workbench.workspace import Workspace

Progress = Callable[[str], None]
MAX_BODY = 64 * 1024          # bytes of a body read for the checks
KEPT_BODY = 4000              # characters of it kept (masked) for the detail view
HOST = "127.0.0.1"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None           # a 3xx is the check's answer, not a hop to somewhere else


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def send(env: str, method: str, url: str, headers: dict[str, str], body: str | None,
         timeout: float) -> tuple[int, bytes]:
    """One request: (status, the start of the body). Prod gets GET or HEAD, nothing else."""
    if env == PROD and method not in PROD_METHODS:
        raise ProdReadOnly(f"sending {method} to prod")
    data = body.encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, response.read(MAX_BODY)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(MAX_BODY)


class CheckRunner:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def run(self, env: str, checks: list[CheckSpec], progress: Progress | None = None) -> list[CheckResult]:
        out = []
        for check in checks:
            if progress:
                progress(f"check {check.name} on {env}")
            if env == PROD and not check.on_prod:
                out.append(self._result(check, env, "skipped", reason="runs on clones only"))
            elif check.kind == "http":
                out.append(self.http(check, env))
            else:
                out.append(self.command(check, env))
        return out

    def _result(self, check: CheckSpec, env: str, outcome: str, reason: str = "", **facts: Any) -> CheckResult:
        """A result, its reason masked (it may quote a value of the body)."""
        return CheckResult(name=check.name, env=env, outcome=outcome, request=check.request, kind=check.kind,
                           at=time.time(), reason=self.ws.redactor.text(reason, env), **facts)

    # --- HTTP --------------------------------------------------------------------------------
    def _port(self, check: CheckSpec, env: str) -> int:
        ws = self.ws
        statuses = ws.backend.status(ws.context(env))
        service = statuses.get(check.service or "")
        if service is None:
            raise ReproError(f"{env} has no service named {check.service!r}.")
        if service.state not in ("running", "starting", "unhealthy"):
            raise ReproError(f"{check.service} is {service.state} in {env}: start it (repro-tui start {env}).")
        if not service.port:
            raise ReproError(f"{check.service} publishes no port in {env}.")
        return service.port

    def http(self, check: CheckSpec, env: str) -> CheckResult:
        try:
            port = self._port(check, env)
        except ReproError as exc:
            return self._result(check, env, "error", reason=exc.message)
        url = f"http://{HOST}:{port}{check.path}"
        runs: list[dict[str, Any]] = []
        first_body = b""
        failed: tuple[str, str] | None = None
        for i in range(check.runs):
            t0 = time.perf_counter()
            try:
                status, body = send(env, check.method, url, check.headers, check.body, check.timeout)
            except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
                why = getattr(exc, "reason", exc)
                return self._result(check, env, "error", runs=runs,
                                    reason=f"no answer from {check.service} on {HOST}:{port}: {why}")
            ms = (time.perf_counter() - t0) * 1000
            runs.append({"status": status, "ms": round(ms, 2)})
            if i == 0:
                first_body = body
            failed = failed or _judge(check, status, body)
        statuses = [r["status"] for r in runs]
        status = max(set(statuses), key=statuses.count)
        latency = median([r["ms"] for r in runs])
        if failed is None and check.latency_ms is not None and latency is not None and latency > check.latency_ms:
            failed = ("latency", f"median {latency:.0f} ms, over {check.latency_ms:g} ms")
        if failed is not None and len(set(statuses)) > 1:
            failed = (failed[0], f"{failed[1]} (the runs answered {', '.join(map(str, statuses))})")
        text = self.ws.redactor.text(first_body.decode("utf-8", "replace")[:KEPT_BODY], env)
        return self._result(check, env, "fail" if failed else "pass", status=status, latency_ms=latency, runs=runs,
                            failure=failed[0] if failed else "", reason=failed[1] if failed else "", body=text)

    # --- commands (clones only) ----------------------------------------------------------------
    def command(self, check: CheckSpec, env: str) -> CheckResult:
        ws = self.ws
        cmd = check.command
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd or [])
        try:
            own = ws.shell_env(env)
            cwd = ws.fence.process(env, ws.worktree(env), argv, own)
            environment = {**os.environ, **own}
        except ReproError as exc:
            return self._result(check, env, "error", reason=exc.message)
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=environment, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            return self._result(check, env, "error", reason=f"cannot run {argv[0]}: {exc.strerror}")
        try:
            output, _ = proc.communicate(timeout=check.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return self._result(check, env, "error", reason=f"did not finish within {check.timeout:g} s")
        ms = (time.perf_counter() - t0) * 1000
        text = ws.redactor.text(output.decode("utf-8", "replace")[-KEPT_BODY:], env)
        failed: tuple[str, str] | None = None
        if proc.returncode != check.exit:
            failed = ("status", f"exit {proc.returncode}, expected {check.exit}")
        elif check.text is not None and check.text not in text:
            failed = ("text", f"{check.text!r} is not in the output")
        elif check.latency_ms is not None and ms > check.latency_ms:
            failed = ("latency", f"took {ms:.0f} ms, over {check.latency_ms:g} ms")
        return self._result(check, env, "fail" if failed else "pass", status=proc.returncode,
                            latency_ms=round(ms, 2), runs=[{"status": proc.returncode, "ms": round(ms, 2)}],
                            failure=failed[0] if failed else "", reason=failed[1] if failed else "", body=text)


def _judge(check: CheckSpec, status: int, body: bytes) -> tuple[str, str] | None:
    """(what failed, why) for one response, or None when it passes."""
    if check.status and status not in check.status:
        return "status", f"status {status}, expected {' or '.join(map(str, check.status))}"
    if not check.status and status >= 400:
        return "status", f"status {status}, expected one below 400"
    text = body.decode("utf-8", "replace")
    if check.text is not None and check.text not in text:
        return "text", f"{check.text!r} is not in the body"
    if check.json:
        try:
            doc = json.loads(text)
        except ValueError:
            return "json", "the body is not JSON"
        for path, want in check.json.items():
            found, got = _field(doc, path)
            if not found:
                return "json", f"the body has no field {path}"
            if got != want and str(got) != str(want):
                return "json", f"{path} = {got!r}, expected {want!r}"
    return None


def _field(doc: Any, path: str) -> tuple[bool, Any]:
    """``items.0.sku`` in a JSON document: (found, value)."""
    for part in path.split("."):
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return False, None
    return True, doc
