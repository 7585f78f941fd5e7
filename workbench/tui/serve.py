"""``repro-tui serve``: the same screen in a browser, through textual-serve.

textual-serve (1.1) has no authentication of its own: anyone who can reach its port can
open the app and drive it. A jump host is shared, so this module puts a token in front
of it: the server binds 127.0.0.1 only, prints a URL with a random token once, and serves
the page, its static files, the websocket that drives the app and downloads only under
the path ``/<token>/`` — every other request gets 403. The token is in the path, never
in a cookie: a browser sends a cookie of 127.0.0.1 to every other service on that address
(cookies ignore ports), and a path goes only where it is typed. The websocket also checks
its Origin, so another site open in the same browser cannot drive the screen. The token
never reaches the app's process (its environment or command line), nor a log line: the
access log is off, and every line the server logs is one line, masked with the token as
a secret value. A malformed request is one line, never a traceback.
"""

from __future__ import annotations

import logging
import secrets
import shlex
import sys
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


def make_server(root: Path, port: int, token: str, title: str) -> Any:
    """A textual-serve Server for the workspace at ``root``, reachable only under ``/<token>/``."""
    from aiohttp import web
    from textual_serve.server import Server

    from workbench.redact import Redactor
    from workbench.secrets import SecretPolicy

    command = f"{shlex.quote(sys.executable)} -m workbench -w {shlex.quote(str(root))}"
    prefix = f"/{token}"
    redactor = Redactor(SecretPolicy(), lambda _env: {token: "the serve token"})

    def same_origin(request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        return origin is None or origin in (f"http://{HOST}:{port}", f"http://localhost:{port}")

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        if not (request.path == prefix or request.path.startswith(prefix + "/")):
            raise web.HTTPForbidden(text="repro-tui: open the URL (with its token) that 'repro-tui serve' printed.\n")
        if request.path == prefix + "/ws" and not same_origin(request):
            raise web.HTTPForbidden(text="repro-tui: the screen can only be driven from its own page.\n")
        return await handler(request)

    class OneLine(logging.Formatter):
        """A log record as one masked line: no traceback, no locals, never the token."""

        def format(self, record: logging.LogRecord) -> str:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                text += f": {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            return "repro-tui serve: " + redactor.text(" ".join(text.split()))

    class TokenServer(Server):
        def initialize_logging(self) -> None:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(OneLine())
            logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
            logging.getLogger("aiohttp.access").disabled = True

        async def _make_app(self) -> web.Application:
            inner = await super()._make_app()
            outer = web.Application(middlewares=[guard])
            outer.add_subapp(prefix + "/", inner)
            return outer

        async def on_startup(self, app: web.Application) -> None:
            self.console.print(f"repro-tui serving {root} on {self.public_url}{prefix}/", highlight=False,
                               soft_wrap=True)
            self.console.print("Only this URL opens it (the token is new each start). Ctrl+C stops serving.",
                               highlight=False)

    return TokenServer(command, host=HOST, port=port, title=title)


def serve(workspace_path: str | Path | None, port: int) -> int:
    """Serve the screen of the workspace at ``workspace_path`` (default: found from here)."""
    from workbench.workspace import Workspace

    ws = Workspace.open(workspace_path)  # fail here, with the engine's message, not in the browser
    root, name = ws.root, ws.spec.name
    ws.close()
    token = secrets.token_urlsafe(24)
    server = make_server(root, port, token, title=f"repro-tui · {name}")
    try:
        server.serve()
    except OSError as exc:
        from workbench.errors import Refused

        raise Refused(f"cannot serve on {HOST}:{port}: {exc.strerror or exc}.",
                      "Choose another port: repro-tui serve --port N") from None
    return 0
