"""The Docker Engine as the backend and the PostgreSQL store use it: one client, errors
turned into messages for people, labels and names of what repro-tui makes, helper
containers and streams.

Everything goes through the Engine API (the ``docker`` SDK), never through host paths,
so that a remote engine (``DOCKER_HOST=ssh://...`` or ``tcp://`` with TLS) works the same.
This module imports the SDK: import it only where Docker is used.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import docker
import docker.errors
import requests

from workbench.errors import BackendError

LABEL_WORKSPACE = "repro.workspace"
LABEL_ENV = "repro.env"
LABEL_SERVICE = "repro.service"
LABEL_ROLE = "repro.role"          # service | data | snapshot | helper | network
LABEL_MOUNT = "repro.mount"        # the path a data volume is mounted at
LABEL_SOURCE = "repro.source"      # the prod volume (or path) a data volume was copied from
LABEL_CONFIG = "repro.config"      # a hash of the settings a container was made with
LABEL_SNAPSHOT = "repro.snapshot"
COMPOSE_PREFIX = "com.docker.compose."
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"

API_TIMEOUT = float(os.environ.get("REPRO_DOCKER_TIMEOUT", "120"))


def engine_address() -> str:
    """Where the SDK looks for the engine, for messages."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def is_remote() -> bool:
    """True when the engine may be on another machine: host paths are then not shared."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host or host.startswith(("unix://", "npipe://")):
        return False
    return not re.match(r"^tcp://(127\.0\.0\.1|localhost)(:|$)", host)


def engine_error(what: str, exc: BaseException) -> BackendError:
    """A BackendError that says what was tried, where, and what to check."""
    detail = _short(exc)
    hint = (f"Tried the Docker engine at {engine_address()} (DOCKER_HOST). Check that it runs "
            "(docker info), that you may use it, and for ssh:// that the key is in ~/.ssh/config.")
    if isinstance(exc, docker.errors.APIError) and exc.status_code and exc.status_code < 500:
        hint = f"The engine at {engine_address()} refused it."
    return BackendError(f"Docker: {what} failed: {detail}", hint)


def _short(exc: BaseException) -> str:
    if isinstance(exc, docker.errors.APIError):
        text = exc.explanation or str(exc)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return str(text).strip()
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "the engine did not answer (connection refused or unreachable)"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer within {API_TIMEOUT:.0f} s"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


ENGINE_ERRORS: tuple[type[BaseException], ...] = (docker.errors.DockerException,
                                                  requests.exceptions.RequestException, OSError, EOFError)
try:  # the ssh transport raises paramiko's own errors
    import paramiko  # type: ignore[import-untyped]

    ENGINE_ERRORS = (*ENGINE_ERRORS, paramiko.SSHException)
except ImportError:  # pragma: no cover - docker[ssh] brings it
    pass


@contextmanager
def engine_call(what: str) -> Iterator[None]:
    """Turn every failure of the engine or of its transport into a BackendError."""
    try:
        yield
    except BackendError:
        raise
    except ENGINE_ERRORS as exc:
        raise engine_error(what, exc) from None


def slug(text: str, limit: int = 40) -> str:
    """A piece of a Docker name made of [a-z0-9-]."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (s or "x")[:limit].strip("-") or "x"


class Engine:
    """A connection to one engine, opened at first use and checked with a ping."""

    def __init__(self, workspace_id: str) -> None:
        self.workspace_id = workspace_id
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            with engine_call("connecting"):
                client = docker.from_env(timeout=int(API_TIMEOUT))
                client.ping()
            self._client = client
        return self._client

    @property
    def api(self) -> Any:
        return self.client.api

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - closing a broken transport
                pass
            self._client = None

    # names and labels -----------------------------------------------------------------
    @property
    def prefix(self) -> str:
        return f"repro-{self.workspace_id[:8]}"

    def name(self, env: str, *parts: str) -> str:
        return "-".join([self.prefix, env, *(slug(p) for p in parts)])

    def labels(self, env: str, service: str = "", role: str = "", **extra: str) -> dict[str, str]:
        out = {LABEL_WORKSPACE: self.workspace_id, LABEL_ENV: env, LABEL_SERVICE: service, LABEL_ROLE: role}
        out.update({f"repro.{k}": v for k, v in extra.items()})
        return out

    def filters(self, env: str | None = None, **more: str) -> dict[str, Any]:
        labels = [f"{LABEL_WORKSPACE}={self.workspace_id}"]
        if env is not None:
            labels.append(f"{LABEL_ENV}={env}")
        labels += [f"repro.{k}={v}" for k, v in more.items()]
        return {"label": labels}

    # queries ------------------------------------------------------------------------------
    def containers(self, env: str | None = None, **more: str) -> list[Any]:
        """Containers with these labels. One removed while listed is left out (the SDK's own
        list fails on it)."""
        out = []
        with engine_call("listing containers"):
            for row in self.api.containers(all=True, filters=self.filters(env, **more)):
                try:
                    out.append(self.client.containers.get(row["Id"]))
                except docker.errors.NotFound:
                    continue
        return out

    def volumes(self, env: str | None = None, **more: str) -> list[Any]:
        with engine_call("listing volumes"):
            return self.client.volumes.list(filters=self.filters(env, **more))

    def networks(self, env: str | None = None, **more: str) -> list[Any]:
        with engine_call("listing networks"):
            return self.client.networks.list(filters=self.filters(env, **more))

    def container(self, name: str) -> Any | None:
        with engine_call(f"inspecting the container {name}"):
            try:
                return self.client.containers.get(name)
            except docker.errors.NotFound:
                return None

    def volume(self, name: str) -> Any | None:
        with engine_call(f"inspecting the volume {name}"):
            try:
                return self.client.volumes.get(name)
            except docker.errors.NotFound:
                return None

    def image_id(self, image: str) -> str | None:
        with engine_call(f"inspecting the image {image}"):
            try:
                return self.client.images.get(image).id
            except docker.errors.ImageNotFound:
                return None

    # making things ------------------------------------------------------------------------
    def create_volume(self, name: str, labels: dict[str, str]) -> Any:
        with engine_call(f"creating the volume {name}"):
            try:
                return self.client.volumes.get(name)
            except docker.errors.NotFound:
                return self.client.volumes.create(name=name, labels=labels)

    def remove_volume(self, name: str) -> None:
        """Remove one of this workspace's volumes (a volume without its label is refused)."""
        with engine_call(f"removing the volume {name}"):
            try:
                volume = self.client.volumes.get(name)
            except docker.errors.NotFound:
                return
            self._own(volume.attrs.get("Labels") or {}, f"removing the volume {name}")
            try:
                volume.remove(force=True)
            except docker.errors.NotFound:
                pass

    def _own(self, labels: dict[str, str], what: str) -> None:
        if labels.get(LABEL_WORKSPACE) != self.workspace_id:
            from workbench.errors import ProdReadOnly

            raise ProdReadOnly(f"{what} (it is not one repro-tui made for this workspace)")

    def remove_container(self, container: Any) -> None:
        self._own(container.labels or {}, f"removing the container {container.name}")
        with engine_call(f"removing the container {container.name}"):
            try:
                container.remove(force=True, v=True)   # its anonymous volumes too, never named ones
            except docker.errors.NotFound:
                pass

    def helper(self, env: str, image: str, script: str, mounts: dict[str, dict[str, str]], what: str,
               service: str = "", user: str | None = None, timeout: float = 3600, network: str = "none",
               environment: dict[str, str] | None = None) -> str:
        """Run ``sh -c script`` in a labelled helper container of ``image`` with the given
        volumes mounted and no network (or ``network``, e.g. ``container:ID`` to reach a
        server on its loopback); return its output, raise with its log tail."""
        name = self.name(env, "helper", what, f"{os.getpid()}{int(time.time() * 1000) % 100000}")
        with engine_call(f"{what} (helper container of {image})"):
            c = self.client.containers.create(
                image, entrypoint=["sh", "-c", script], command=[], name=name, volumes=mounts,
                labels=self.labels(env, service, "helper"), network_mode=network, user=user or "0:0",
                environment=environment, detach=True)
            try:
                c.start()
                result = c.wait(timeout=timeout)
                out = c.logs(stdout=True, stderr=True).decode("utf-8", "replace")
            finally:
                try:
                    c.remove(force=True, v=True)
                except ENGINE_ERRORS:
                    pass
        if result.get("StatusCode", 1) != 0:
            tail = "\n".join(out.strip().splitlines()[-8:])
            raise BackendError(f"Docker: {what} failed in a helper container of {image}:\n{tail}",
                               "The copy was not made; nothing of prod was changed.")
        return out

    def copy_volume(self, env: str, image: str, src: str, dest: str, what: str, service: str = "",
                    src_is_bind: bool = False) -> None:
        """Copy one volume (or an engine-side folder) into another, as it is: ``cp -a``,
        never compressed. ``dest`` is emptied first."""
        src_mount = {"bind": "/from", "mode": "ro"}
        script = ("set -e; find /to -mindepth 1 -maxdepth 1 -exec rm -rf {} +; "
                  "if [ -d /from ]; then cp -a /from/. /to/; else cp -a /from /to/; fi")
        self.helper(env, image, script, {src: src_mount, dest: {"bind": "/to", "mode": "rw"}}, what, service)
        _ = src_is_bind

    def exec(self, container: Any, cmd: list[str], user: str = "", environment: dict[str, str] | None = None,
             what: str = "a command") -> tuple[int, bytes, bytes]:
        """Run a command in a running container; (exit code, stdout, stderr)."""
        cid = container if isinstance(container, str) else container.id
        with engine_call(what):
            ex = self.api.exec_create(cid, cmd, user=user, environment=environment, stdout=True, stderr=True)
            out, err = self.api.exec_start(ex["Id"], demux=True)
            code = self.api.exec_inspect(ex["Id"]).get("ExitCode")
        return (1 if code is None else code), out or b"", err or b""

    def exec_detached(self, container: Any, cmd: list[str], user: str = "", what: str = "a command") -> None:
        """Start a command in a container and return at once: it outlives this process."""
        cid = container if isinstance(container, str) else container.id
        with engine_call(what):
            ex = self.api.exec_create(cid, cmd, user=user, stdout=False, stderr=False)
            self.api.exec_start(ex["Id"], detach=True)

    def exec_stream(self, container: Any, cmd: list[str], user: str = "",
                    what: str = "a command") -> tuple[Iterator[bytes], Callable[[], tuple[int, bytes]]]:
        """Stream a command's stdout; the returned function gives (exit code, stderr) once drained."""
        cid = container if isinstance(container, str) else container.id
        errors: list[bytes] = []
        with engine_call(what):
            ex = self.api.exec_create(cid, cmd, user=user, stdout=True, stderr=True)
            chunks = self.api.exec_start(ex["Id"], stream=True, demux=True)

        def body() -> Iterator[bytes]:
            for out, err in chunks:
                if err:
                    errors.append(err)
                if out:
                    yield out

        def result() -> tuple[int, bytes]:
            with engine_call(what):
                code = self.api.exec_inspect(ex["Id"]).get("ExitCode")
            return (1 if code is None else code), b"".join(errors)

        return body(), result

    def exec_stdin(self, container: Any, cmd: list[str], data: Iterable[bytes], user: str = "",
                   environment: dict[str, str] | None = None, what: str = "a command") -> tuple[int, bytes]:
        """Run a command with ``data`` streamed into its stdin (a pipe through the Engine
        API, as ``docker exec -i`` does); (exit code, the tail of its output)."""
        import socket
        import struct
        import threading

        cid = container if isinstance(container, str) else container.id
        with engine_call(what):
            ex = self.api.exec_create(cid, cmd, stdin=True, stdout=True, stderr=True, user=user,
                                      environment=environment)
            sock = self.api.exec_start(ex["Id"], socket=True)
        raw = getattr(sock, "_sock", sock)   # a socket, an SSL socket or an ssh channel
        raw.settimeout(API_TIMEOUT)
        output: list[bytes] = []

        def read() -> None:   # drained meanwhile, so a chatty command never blocks on a full pipe
            buf = b""
            try:
                while True:
                    chunk = raw.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                    while len(buf) >= 8:
                        size = struct.unpack(">BxxxL", buf[:8])[1]
                        if len(buf) < 8 + size:
                            break
                        output.append(buf[8:8 + size])
                        buf = buf[8 + size:]
                        del output[:-64]
            except (OSError, EOFError):
                pass

        reader = threading.Thread(target=read, name="repro-exec-output", daemon=True)
        reader.start()
        cut: BaseException | None = None
        try:
            try:
                for chunk in data:
                    raw.sendall(chunk)
                if hasattr(raw, "shutdown_write"):
                    raw.shutdown_write()
                else:
                    raw.shutdown(socket.SHUT_WR)
            except ENGINE_ERRORS as exc:   # the command may have stopped reading: its exit code says why
                cut = exc
            reader.join(API_TIMEOUT)
        finally:
            for obj in (raw, sock):
                try:
                    obj.close()
                except Exception:  # noqa: BLE001 - closing a broken transport
                    pass
        with engine_call(what):
            for _ in range(100):   # the exit code is set a moment after the streams close
                info = self.api.exec_inspect(ex["Id"])
                if not info.get("Running"):
                    break
                time.sleep(0.05)
        code = info.get("ExitCode")
        if cut is not None and code == 0:
            raise engine_error(what, cut)
        return (1 if code is None else code), b"".join(output)[-4000:]

    def put_archive(self, container: Any, path: str, data: Iterable[bytes] | bytes, what: str) -> None:
        cid = container if isinstance(container, str) else container.id
        with engine_call(what):
            ok = self.api.put_archive(cid, path, data)
        if not ok:
            raise BackendError(f"Docker: {what} failed: the engine did not accept the archive.")


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)
