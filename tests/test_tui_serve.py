"""`repro-tui serve`: the screen in a browser, on 127.0.0.1, only for who has the printed token."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def served(shop: Path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "serve", "--port", str(port), "-w", str(shop)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    url = None
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline and url is None:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        found = re.search(r"(http://127\.0\.0\.1:\d+/([A-Za-z0-9_-]{20,})/)", line)
        if found:
            url = found.group(1)
    assert url, "no URL with a token was printed:\n" + "".join(seen)
    for _ in range(100):  # wait until it listens
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield port, url, url.rstrip("/").rsplit("/", 1)[1], proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _listens_on_loopback_only(port: int) -> bool:
    hex_port = f"{port:04X}"
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and local.endswith(":" + hex_port):
                addresses.append(local.split(":")[0])
    return bool(addresses) and all(a == "0100007F" for a in addresses)


def test_serve_needs_the_token_and_listens_on_loopback_only(served):
    port, url, token, proc = served
    assert url == f"http://127.0.0.1:{port}/{token}/"
    assert _listens_on_loopback_only(port)

    async def check() -> None:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as anonymous:
            for path in ("/", "/?token=wrong", "/static/css/xterm.css", "/ws", "/wrong-token/", f"/{token[:-1]}/"):
                async with anonymous.get(base + path) as r:
                    assert r.status == 403, path
                    assert "token" in await r.text()
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:  # an IP host
            async with browser.get(url) as r:
                assert r.status == 200
                page = await r.text()
                assert "repro-tui" in page
                # no cookie: a cookie of 127.0.0.1 would be sent to every other service on it
                assert "Set-Cookie" not in r.headers and not browser.cookie_jar.filter_cookies(base)
                assert f"/{token}/static/" in page and f"/{token}/ws" in page
            async with browser.get(url + "static/css/xterm.css") as r:
                assert r.status == 200
            # another site cannot drive the screen, even from the same browser
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await browser.ws_connect(url + "ws", headers={"Origin": "http://evil.example"})
            # its own page can: the real app starts and paints
            async with browser.ws_connect(url + "ws?width=80&height=24",
                                          headers={"Origin": f"http://127.0.0.1:{port}"}) as ws:
                received = b""
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and b"Environments" not in received:
                    try:
                        msg = await ws.receive(timeout=2)
                    except TimeoutError:
                        continue
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        received += msg.data
                    elif msg.type == aiohttp.WSMsgType.TEXT:
                        received += msg.data.encode()
                    elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        break
                assert b"Environments" in received

    asyncio.run(check())
    # a malformed request is one line, and no log line shows the token
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall(b"\x16\x03\x01 garbage that is no HTTP request\r\n\r\n")
        raw.settimeout(5)
        try:
            raw.recv(1000)
        except OSError:
            pass
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    rest = proc.communicate(timeout=20)[0]   # after the URL line (read by the fixture), the user needs
    assert token not in rest, rest
    assert "Traceback" not in rest and "locals" not in rest.lower(), rest
    assert all(len(line) < 300 for line in rest.splitlines()), rest


def test_serve_refuses_a_bad_port_before_printing_anything(shop):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for port in ("70000", "0", "http"):
        r = subprocess.run([sys.executable, "-m", "workbench", "serve", "--port", port, "-w", str(shop)],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 2, (port, r.stderr)
        assert r.stdout == "" and "port" in r.stderr and "bug" not in r.stderr and "http://" not in r.stderr


def test_serve_outside_a_workspace_says_what_to_do(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "workbench", "serve", "--port", str(free_port())], cwd=tmp_path,
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1
    assert "no workspace here" in r.stderr and "Traceback" not in r.stderr
