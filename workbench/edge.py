"""A clone's edge: the one process of the host that runs beside a clone's services.

    python -m workbench.edge CONFIG.json

It serves, in one asyncio loop, what its configuration lists:

* ``mail``: the clone's mail sink (``workbench.mailsink``) on ``[host, port]``, keeping
  messages in ``folder``;
* ``forwards``: TCP forwarders ``listen -> target`` (on Docker, a clone's network is
  internal, so the engine publishes no port: the host's 127.0.0.1 port of a service is
  forwarded here to its container);
* ``proxy``: an HTTP proxy (CONNECT and plain requests) on ``listen`` that lets through only
  the ``allow`` list (``clone.egress.allow``) and answers 403 to anything else.

It stops on SIGTERM or SIGINT, and by itself once its configuration file is gone (the
clone's folder removed by hand, or a workspace deleted with its clones running): nothing is
left to serve, and no one would stop it. Backends start it with a pid file beside the
services' (``workbench.backends.edge_process``).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from workbench.egress import Endpoint, allowed, parse_allow

BUFFER = 64 * 1024
CONNECT_TIMEOUT = 10.0
WATCH = 2.0          # seconds between two looks at the configuration file


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(BUFFER)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            pass


async def _join(a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                b: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    try:
        await asyncio.gather(_pipe(a[0], b[1]), _pipe(b[0], a[1]))
    finally:
        for w in (a[1], b[1]):
            w.close()


def forwarder(target: tuple[str, int]) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up = await asyncio.wait_for(asyncio.open_connection(*target), CONNECT_TIMEOUT)
        except (TimeoutError, OSError):
            writer.close()
            return
        await _join((reader, writer), up)

    return handle


def _refuse(writer: asyncio.StreamWriter, what: str) -> None:
    body = (f"blocked by repro-tui: {what} is outside the clone. To let clones reach it, add it "
            "under clone.egress.allow in repro.yaml.\n").encode()
    writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def proxy(allow: list[Endpoint]) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            writer.close()
            return
        first = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = first.split(" ")
        if len(parts) != 3:
            writer.close()
            return
        method, target, _version = parts
        if method.upper() == "CONNECT":
            ep = parse_allow(target)
        else:
            rest = target.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
            ep = parse_allow(rest)
            if ep is not None and ep.port is None:
                ep = Endpoint(ep.host, 443 if target.startswith("https") else 80)
        if ep is None or ep.port is None or not allowed(ep, allow):
            _refuse(writer, str(ep) if ep else target[:100])
            await writer.drain()
            writer.close()
            return
        try:
            up = await asyncio.wait_for(asyncio.open_connection(ep.host, ep.port), CONNECT_TIMEOUT)
        except (TimeoutError, OSError):
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        if method.upper() == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            up[1].write(head)
        await writer.drain()
        await _join((reader, writer), up)

    return handle


async def _while_exists(path: Path | None, stop: asyncio.Event) -> None:
    """Set ``stop`` once ``path`` is gone."""
    if path is None:
        return
    while not stop.is_set():
        await asyncio.sleep(WATCH)
        if not path.exists():
            print(f"edge: {path} is gone; stopping", file=sys.stderr, flush=True)
            stop.set()


async def serve(config: dict[str, Any], path: Path | None = None) -> None:
    loop = asyncio.get_running_loop()
    servers = []
    mail = config.get("mail")
    if mail:
        from workbench.mailsink import smtp_factory

        host, port = mail["listen"]
        servers.append(await loop.create_server(smtp_factory(Path(mail["folder"])), host, port))
    for fwd in config.get("forwards", []):
        host, port = fwd["listen"]
        servers.append(await asyncio.start_server(forwarder(tuple(fwd["target"])), host, port))
    px = config.get("proxy")
    if px:
        allow = [ep for ep in (parse_allow(a) for a in px.get("allow", [])) if ep is not None]
        host, port = px["listen"]
        servers.append(await asyncio.start_server(proxy(allow), host, port))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"edge ready: {len(servers)} listener(s)", file=sys.stderr, flush=True)
    watch = asyncio.create_task(_while_exists(path, stop))
    await stop.wait()
    watch.cancel()
    for s in servers:
        s.close()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m workbench.edge CONFIG.json", file=sys.stderr)
        return 2
    try:
        path = Path(argv[0]).absolute()
        config = json.loads(path.read_text())
        asyncio.run(serve(config, path))
    except OSError as exc:
        print(f"edge: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
