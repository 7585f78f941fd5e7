"""Make screenshots/*.svg from the real app on a real demo workspace (``make screenshots``).

The story of the README, for real: build the demo, start its prod, fork ``bug1``, reproduce
the failing order in the clone, refund an order through the clone's own API (its data
changes), apply the one-line fix in the clone's config, then photograph the screen on each
tab and in its dialogs. Nothing here is drawn by hand: every SVG is ``App.save_screenshot``
of ``make_app(ws)``, the function ``repro-tui`` itself runs.

    .venv/bin/python scripts/screenshots.py [--out screenshots] [--size 80x24]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for var, value in (("GIT_AUTHOR_NAME", "Dana Developer"), ("GIT_AUTHOR_EMAIL", "dana@example.invalid"),
                   ("GIT_COMMITTER_NAME", "Dana Developer"), ("GIT_COMMITTER_EMAIL", "dana@example.invalid")):
    os.environ.setdefault(var, value)


def http(method: str, url: str) -> int:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def prepare(base: Path):
    """The demo with a clone that shows the bug, a refund, and the fix in its config."""
    from workbench.demo import DEMO_BUG, DEMO_PORT, build_demo
    from workbench.workspace import Workspace

    root = base / "shop"
    build_demo(root)
    ws = Workspace(root)
    if port_free(DEMO_PORT):
        ws.start("prod")
    ws.fork("prod", "bug1")
    port = ws.status("bug1").services["web"]["port"]
    assert http("GET", f"http://127.0.0.1:{port}/orders/{DEMO_BUG['order_id']}") == DEMO_BUG["status"]
    http("POST", f"http://127.0.0.1:{port}/orders/{DEMO_BUG['refund_order_id']}/refund")
    config = ws.worktree("bug1") / DEMO_BUG["config_file"]
    config.write_text(config.read_text().replace(f"discount_mode: {DEMO_BUG['buggy_value']}",
                                                 f"discount_mode: {DEMO_BUG['fixed_value']}"))
    ws.stop("bug1")
    ws.start("bug1")   # the fix runs: its check passes, prod's still fails
    ws.fork("prod", "bug2")
    ws.stop("bug2")
    return ws


async def shoot(ws, out: Path, size: tuple[int, int]) -> list[Path]:
    from workbench.demo import DEMO_BUG
    from workbench.tui.app import make_app

    made: list[Path] = []
    os.chdir(ws.root)   # as a user starts it: worktrees are shown from here (./.repro/envs/bug1)
    app = make_app(ws, keymap_file=out / ".no-keymap.toml")
    async with app.run_test(size=size) as pilot:
        screen = app.screen_stack[0]

        async def until(check, timeout: float = 30.0) -> None:
            deadline = time.monotonic() + timeout
            while not check():
                if time.monotonic() > deadline:
                    raise TimeoutError("the screen did not get there")
                await pilot.pause(0.05)

        def save(name: str) -> None:
            path = out / f"{name}.svg"
            app.save_screenshot(str(path.name), str(out))
            made.append(path)

        await until(lambda: "bug1" in screen.envs)
        screen.query_one("#envs").select_name("bug1")
        await until(lambda: screen.report is not None and screen.report.right == "bug1" and screen.report.config
                    and screen.report.data)
        await pilot.pause(0.5)
        save("main-config")
        await pilot.press("2", "u")
        await pilot.pause(0.3)
        save("main-services")
        await pilot.press("u", "3")
        await pilot.pause(0.3)
        save("main-data")
        await pilot.press("enter", "enter")                 # into the diff, then the change in full
        await until(lambda: app.screen.__class__.__name__ == "DetailDialog")
        await pilot.pause(0.3)
        save("change-detail")
        await pilot.press("escape", "escape")
        await pilot.press("f", *"bug-1042")
        await pilot.pause(0.3)
        save("fork-dialog")
        await pilot.press("escape")
        await pilot.press("p")
        await until(lambda: app.screen.__class__.__name__ == "PromoteDialog")
        await pilot.press(*"Count discount codes after markdowns (ticket #1042)")
        await pilot.pause(0.3)
        save("promote-dialog")
        await pilot.press("escape", "question_mark")
        await pilot.pause(0.3)
        save("help")
        await pilot.press("escape")
        screen.query_one("#envs").select_name("bug1")
        await pilot.press("K")                                  # the check's answers on prod and bug1
        await until(lambda: app.screen.__class__.__name__ == "ReadingDialog")
        await pilot.pause(0.3)
        save("checks")
        await pilot.press("escape", "W")                        # the post-mortem
        await until(lambda: app.screen.__class__.__name__ == "ReadingDialog")
        await pilot.pause(0.5)
        save("report")
        await pilot.press("escape")
        prod_config = ws.root / DEMO_BUG["config_file"]         # a hot fix by hand on prod: drift
        prod_config.write_text(prod_config.read_text().replace("shipping_fee: 4.90", "shipping_fee: 5.90"))
        await pilot.press("D")
        await until(lambda: app.screen.__class__.__name__ == "ReadingDialog")
        await pilot.pause(0.3)
        save("drift")
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--size", default="80x24", help="terminal size, COLUMNSxROWS (default 80x24)")
    args = parser.parse_args()
    cols, rows = (int(n) for n in args.size.lower().split("x"))
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("REPRO_READY", "sync")
    base = Path(tempfile.mkdtemp(prefix="repro-screenshots-"))
    ws = None
    try:
        ws = prepare(base)
        made = asyncio.run(shoot(ws, args.out, (cols, rows)))
    finally:
        if ws is not None:
            from workbench.backends.local import kill_services

            kill_services(ws.root, signal.SIGTERM)
            ws.close()
        shutil.rmtree(base, ignore_errors=True)
    for path in made:
        text = path.read_text()
        path.write_text(text.replace(str(base), "~/demo"))  # no path of this machine in the pictures
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
