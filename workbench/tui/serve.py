"""``repro-tui serve``: the same screen in a browser, through textual-serve.

textual-serve (1.1) has no authentication of its own: anyone who can reach its port can
open the app and drive it. A jump host is shared, so this module puts a token in front
of it: the server binds 127.0.0.1 only, prints a URL with a random token once, and
answers every request (page, static files, the websocket that drives the app, downloads)
with 403 unless it carries that token — in the URL the first time, then in an HttpOnly,
SameSite=Strict cookie. The websocket also checks its Origin, so another site open in
the same browser cannot drive the screen. The token never reaches the app's process
(its environment or command line), so ``ps`` on the host does not show it.
"""

from __future__ import annotations

import hmac
import secrets
import shlex
import sys
from pathlib import Path
from typing import Any

COOKIE = "repro_tui_token"
HOST = "127.0.0.1"


def make_server(root: Path, port: int, token: str, title: str) -> Any:
    """A textual-serve Server for the workspace at ``root`` that demands ``token``."""
    from aiohttp import web
    from textual_serve.server import Server

    command = f"{shlex.quote(sys.executable)} -m workbench -w {shlex.quote(str(root))}"

    def authorised(request: web.Request) -> bool:
        given = request.query.get("token") or request.cookies.get(COOKIE) or ""
        return hmac.compare_digest(given.encode(), token.encode())

    def same_origin(request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        return origin is None or origin in (f"http://{HOST}:{port}", f"http://localhost:{port}")

    @web.middleware
    async def check_token(request: web.Request, handler: Any) -> web.StreamResponse:
        if not authorised(request):
            raise web.HTTPForbidden(text="repro-tui: open the URL with the token that 'repro-tui serve' printed.\n")
        if request.path == "/ws" and not same_origin(request):
            raise web.HTTPForbidden(text="repro-tui: the screen can only be driven from its own page.\n")
        response = await handler(request)
        if request.query.get("token"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        return response

    class TokenServer(Server):
        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            app.middlewares.append(check_token)
            return app

        async def on_startup(self, app: web.Application) -> None:
            self.console.print(f"repro-tui serving {root} on {self.public_url}/?token={token}", highlight=False,
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
