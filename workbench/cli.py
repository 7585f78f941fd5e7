"""The command line: one subcommand per operation, each a call on the Workspace.

Exit codes: 0 done; 1 a valid request that could not be done; 2 invalid input;
130 interrupted. Errors are one or two lines on stderr (and JSON on stdout with --json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from workbench import __version__
from workbench.errors import Interrupted, InvalidInput, ReproError

EPILOG = """\
environments: 'prod' (read-only) and its clones. A snapshot is named CLONE@SNAPSHOT.
exit codes: 0 done, 1 could not be done, 2 invalid input, 130 interrupted.
Run 'repro-tui COMMAND --help' for one command. README has the whole story."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise InvalidInput(f"{self.prog}: {message}.", f"See: {self.prog} --help")


def _common(json_default: Any) -> Parser:
    p = Parser(add_help=False)
    p.add_argument(
        "-w",
        "--workspace",
        metavar="PATH",
        default=json_default,
        help="the workspace (default: found upward from the current folder)",
    )
    p.add_argument("--json", action="store_true", default=json_default, help="print JSON")
    p.add_argument("--debug", action="store_true", default=json_default, help="show tracebacks")
    return p


def _count(text: str) -> int:
    """A number of lines or entries: 1 or more (a negative one read the log backwards)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {n}")
    return n


def build_parser() -> Parser:
    common = _common(argparse.SUPPRESS)
    parser = Parser(
        prog="repro-tui",
        description="Fork prod into an isolated clone, see what differs, reset it "
        "in a key press, and promote the fix as a git commit. Without a command: open the screen.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common(None)],
    )
    parser.add_argument("--version", action="version", version=f"repro-tui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def cmd(name: str, help: str, **kw: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[common], **kw)

    p = cmd("demo", "build a demo shop workspace, start its prod and open the screen")
    p.add_argument("path", nargs="?", help="where to build it (default: a new folder in your data directory)")
    p.add_argument("--no-open", action="store_true", help="only build it and print its path")
    p.add_argument("--no-start", action="store_true", help="do not start prod's services")
    cmd("list", "list the environments")
    p = cmd("status", "one environment in detail")
    p.add_argument("env", help="prod or a clone")
    p = cmd("fork", "fork prod (or a clone, or CLONE@SNAPSHOT) into a new clone")
    p.add_argument("source", help="prod, a clone, or CLONE@SNAPSHOT")
    p.add_argument("name", help="the new clone's name: a-z, 0-9 and '-', e.g. bug-1042")
    p = cmd("snapshot", "snapshot a clone's data and worktree (or delete a snapshot)")
    p.add_argument("env", help="a clone (prod is read-only)")
    p.add_argument("name", nargs="?", help="default: s1, s2, ...")
    p.add_argument("--delete", metavar="NAME", help="delete the snapshot NAME instead")
    p = cmd("snapshots", "list a clone's snapshots with their sizes")
    p.add_argument("env", help="a clone")
    p = cmd("reset", "reset a clone's data to a snapshot (default: the latest)")
    p.add_argument("env", help="a clone")
    p.add_argument("snapshot", nargs="?", help="its name (see: repro-tui snapshots ENV); default: the latest")
    p.add_argument("--undo", action="store_true", help="go back to the state the last reset replaced")
    p.add_argument("--code", action="store_true", help="also reset the worktree (loses uncommitted changes)")
    p = cmd("promote", "commit the clone's changes on its branch (and merge into prod's with --merge)")
    p.add_argument("env", help="a clone")
    p.add_argument("-m", "--message", required=True, help="the commit message (repro-tui adds its trailers)")
    p.add_argument("--merge", action="store_true", help="also merge into prod's branch")
    p = cmd("destroy", "remove a clone: services, worktree, data and snapshots")
    p.add_argument("env", help="a clone")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask")
    p.add_argument("--force", action="store_true", help="even with uncommitted changes in its worktree")
    p = cmd("start", "start an environment's services")
    p.add_argument("env", help="prod or a clone")
    p = cmd("stop", "stop an environment's services")
    p.add_argument("env", help="prod or a clone")
    p = cmd("logs", "a service's output")
    p.add_argument("env", help="prod or a clone")
    p.add_argument("service", nargs="?", help="default: the first service")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines (Ctrl-C ends)")
    p.add_argument("-n", "--lines", type=_count, default=100, help="how many of the last lines (default 100)")
    p = cmd("shell", "a shell in a clone's worktree with its environment exported")
    p.add_argument("env", help="a clone")
    p = cmd("log", "the journal of operations")
    p.add_argument("env", nargs="?", help="only this environment's operations")
    p.add_argument("-n", "--limit", type=_count, default=30, help="how many (default 30)")
    p = cmd("diff", "what differs between two environments (or ENV@SNAPSHOT)")
    p.add_argument("a", metavar="A", help="left side: prod, a clone, or CLONE@SNAPSHOT")
    p.add_argument("b", metavar="B", help="right side, e.g. the clone")
    p.add_argument("--only-unexpected", action="store_true", help="hide what a clone differs by on purpose")
    p.add_argument("--include-scrubbed", action="store_true", help="compare scrubbed columns row by row")
    p.add_argument("--limit", type=int, default=None, help="at most N changes per section/table")
    p = cmd("serve", "serve the screen in a browser (127.0.0.1, protected by a token)")
    p.add_argument("--port", type=int, default=8765, help="the local port (default 8765)")
    p = cmd("init", "write a commented repro.yaml for a running docker compose project")
    p.add_argument("project", nargs="?", help="the compose project's name (default: the only one running)")
    cmd("recover", "roll back or finish operations that were cut off")
    return parser


class StepPrinter:
    """Steps with timings on a terminal; nothing when piped."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.last: str | None = None
        self.last_t = self.t0

    def __call__(self, text: str) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.last is not None:
            sys.stderr.write(f"\r  ✓ {self.last} ({(now - self.last_t) * 1000:.0f} ms)\033[K\n")
        self.last, self.last_t = text, now
        sys.stderr.write(f"  … {text}\033[K")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self.last is not None:
            now = time.perf_counter()
            sys.stderr.write(f"\r  ✓ {self.last} ({(now - self.last_t) * 1000:.0f} ms)\033[K\n")
            self.last = None


def _age(ts: float | None) -> str:
    if not ts:
        return "-"
    s = max(0, time.time() - ts)
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= n:
            return f"{int(s // n)}{unit}"
    return f"{int(s)}s"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _table(rows: list[list[str]], out) -> None:
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() + "\n")


def _emit(args: argparse.Namespace, data: Any, text: Callable[[], object]) -> None:
    if args.json:
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        text()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    raw = list(sys.argv[1:] if argv is None else argv)
    want_json = "--json" in raw
    debug = "--debug" in raw
    try:
        args = parser.parse_args(raw)
        return run(args, parser)
    except KeyboardInterrupt:
        return _fail(Interrupted("interrupted."), want_json)
    except ReproError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        return _fail(exc, want_json)
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: still no traceback unless asked for
        if debug:
            raise
        return _fail(
            ReproError(
                f"unexpected {type(exc).__name__}: {exc}",
                "This is a bug in repro-tui. Run again with --debug to see where, and report it.",
            ),
            want_json,
        )


def _fail(exc: ReproError, want_json: bool) -> int:
    sys.stderr.write(f"error: {exc.message}\n")
    if exc.hint:
        sys.stderr.write(f"  {exc.hint}\n")
    if want_json:
        json.dump({"error": {"message": exc.message, "hint": exc.hint, "code": exc.code}}, sys.stdout)
        sys.stdout.write("\n")
    return exc.code


def _open(args: argparse.Namespace):
    from workbench.workspace import Workspace

    ws = Workspace.open(args.workspace)
    for entry in ws.try_recover():
        sys.stderr.write(
            f"note: {entry.op} of {entry.env} had been cut off; it was "
            f"{'rolled back' if entry.op == 'fork' else 'recovered'}.\n"
        )
    return ws


def run(args: argparse.Namespace, parser: Parser) -> int:
    command = args.command
    out = sys.stdout
    progress = StepPrinter(sys.stderr.isatty() and not args.json)
    if command is None:
        return _open_screen(args)
    if command == "demo":
        return _demo(args, progress)
    if command == "serve":
        from workbench.tui.serve import serve

        return serve(args.workspace, args.port)
    if command == "init":
        from workbench.backends.docker_init import run_init

        return run_init(args)
    ws = _open(args)
    if command == "list":
        envs = ws.list_envs()
        pending = ws.pending()

        def text() -> None:
            rows = [["NAME", "KIND", "STATE", "BRANCH", "AGE", "SNAPSHOTS", "PORTS"]]
            for e in envs:
                ports = ",".join(str(s.get("port")) for s in e.services.values() if s.get("port"))
                rows.append(
                    [
                        e.name,
                        e.kind,
                        e.state,
                        e.branch,
                        _age(e.created_at),
                        str(len(e.snapshots)) if e.kind == "clone" else "-",
                        ports or "-",
                    ]
                )
            _table(rows, out)
            for p in pending:
                out.write(
                    f"! {p.op} of {p.env} was cut off; the next command that changes something recovers it "
                    "(or: repro-tui recover)\n"
                )

        _emit(args, [e.as_dict() for e in envs], text)
    elif command == "status":
        e = ws.status(args.env)

        def text() -> None:
            out.write(f"{e.name} ({e.kind})  {e.state}\n  branch    {e.branch}\n  worktree  {e.worktree}\n")
            if e.source:
                out.write(f"  forked    from {e.source} at {str(e.forked_commit)[:12]}, {_age(e.created_at)} ago\n")
            for name, s in e.services.items():
                extra = f" port {s['port']}" if s.get("port") else ""
                extra += f" pid {s['pid']}" if s.get("pid") else ""
                out.write(f"  service   {name}: {s['state']}{extra}\n")
            for name, st in e.stores.items():
                out.write(f"  store     {name} ({st['type']}): {st['location']}\n")
            if e.kind == "clone":
                names = ", ".join(s.name for s in e.snapshots) or "none"
                out.write(f"  snapshots {names}\n")
                if e.last_reset:
                    out.write(
                        f"  last reset to {e.last_reset}"
                        + (" (undo: repro-tui reset --undo)" if e.can_undo_reset else "")
                        + "\n"
                    )

        _emit(args, e.as_dict(), text)
    elif command == "fork":
        e = ws.fork(args.source, args.name, progress=progress)
        progress.done()

        def text() -> None:
            out.write(f"forked {args.source} into {e.name} in {time.perf_counter() - progress.t0:.2f} s\n")
            for name, s in e.services.items():
                if s.get("port"):
                    out.write(f"  {name}: http://127.0.0.1:{s['port']}\n")
            out.write(f"  worktree: {e.worktree}\n  reset its data any time: repro-tui reset {e.name}\n")

        _emit(args, e.as_dict(), text)
    elif command == "snapshot":
        if args.delete:
            ws.delete_snapshot(args.env, args.delete)
            _emit(
                args,
                {"deleted": args.delete, "env": args.env},
                lambda: out.write(f"deleted snapshot {args.env}@{args.delete}\n"),
            )
        else:
            s = ws.snapshot(args.env, args.name, progress=progress)
            progress.done()
            _emit(args, s.as_dict(), lambda: out.write(f"snapshot {args.env}@{s.name} ({_size(s.size)})\n"))
    elif command == "snapshots":
        snaps = ws.snapshots(args.env)

        def text() -> None:
            rows = [["NAME", "AGE", "SIZE", "COMMIT", "READY"]]
            for s in snaps:
                rows.append(
                    [
                        s.name,
                        _age(s.created_at),
                        _size(s.size),
                        (s.commit or "-")[:10] + ("+" if s.dirty else ""),
                        "yes" if s.ready else "-",
                    ]
                )
            _table(rows, out)
            out.write(f"{len(snaps)} snapshot(s), {_size(sum(s.size for s in snaps))} on disk\n")

        _emit(args, [s.as_dict() for s in snaps], text)
    elif command == "reset":
        if args.undo:
            if args.snapshot:
                raise InvalidInput("--undo takes no snapshot name.", f"repro-tui reset {args.env} --undo")
            ws.undo_reset(args.env, progress=progress)
            progress.done()
            _emit(
                args,
                {"env": args.env, "undone": True},
                lambda: out.write(
                    f"{args.env}: back to the state before the last reset (again: repro-tui reset {args.env} --undo)\n"
                ),
            )
        else:
            t0 = time.perf_counter()
            s = ws.reset(args.env, args.snapshot, code=args.code, progress=progress)
            progress.done()
            _emit(
                args,
                {"env": args.env, "snapshot": s.name, "seconds": time.perf_counter() - t0},
                lambda: out.write(
                    f"{args.env} reset to {s.name} in {(time.perf_counter() - t0) * 1000:.0f} ms "
                    f"(undo: repro-tui reset {args.env} --undo)\n"
                ),
            )
    elif command == "promote":
        r = ws.promote(args.env, args.message, merge=args.merge, progress=progress)
        progress.done()

        def text() -> None:
            out.write(f"committed {r.commit[:12]} on {r.branch} ({len(r.files)} file(s))\n")
            if r.merged_into:
                out.write(f"merged into {r.merged_into}\n")

        _emit(args, r.as_dict(), text)
    elif command == "destroy":
        if not args.yes:
            if not sys.stdin.isatty():
                raise InvalidInput(
                    f"destroy {args.env} needs a confirmation, and there is no terminal to ask.",
                    f"Add --yes: repro-tui destroy {args.env} --yes",
                )
            from workbench.names import check_env_name

            check_env_name(args.env)
            answer = input(f"Destroy {args.env}: its services, worktree, data and snapshots? Type its name: ")
            if answer.strip() != args.env:
                sys.stderr.write("not destroyed.\n")
                return 1
        notes = ws.destroy(args.env, force=args.force, progress=progress)
        progress.done()
        _emit(
            args,
            {"destroyed": args.env, "notes": notes},
            lambda: out.write(f"destroyed {args.env}\n" + "".join(f"  {n}\n" for n in notes)),
        )
    elif command in ("start", "stop"):
        e = getattr(ws, command)(args.env, progress=progress)
        progress.done()
        _emit(args, e.as_dict(), lambda: out.write(f"{e.name}: {e.state}\n"))
    elif command == "logs":
        for line in ws.logs(args.env, args.service, follow=args.follow, lines=args.lines):
            out.write(line + "\n")
            if args.follow:
                out.flush()
    elif command == "shell":
        env = ws.shell_env(args.env)
        if args.json:  # shown, so masked: only the shell itself gets the secret values
            _emit(args, ws.secrets.mask_tree(env), lambda: None)
            return 0
        shell = os.environ.get("SHELL", "/bin/sh")
        sys.stderr.write(f"a shell in {args.env} ({env['REPRO_WORKTREE']}); exit to leave\n")
        os.chdir(env["REPRO_WORKTREE"])
        os.execvpe(shell, [shell], {**os.environ, **env})
    elif command == "log":
        entries = ws.journal(args.env, args.limit)

        def text() -> None:
            rows = [["WHEN", "OP", "ENV", "OUTCOME", "TOOK", "WHO", "NOTE"]]
            for j in reversed(entries):
                took = f"{j.seconds:.2f}s" if j.seconds is not None else "-"
                rows.append(
                    [
                        time.strftime("%m-%d %H:%M:%S", time.localtime(j.started_at)),
                        j.op,
                        j.env or "-",
                        j.outcome,
                        took,
                        f"{j.user}@{j.host}",
                        (j.message or "").splitlines()[0][:60] if j.message else "",
                    ]
                )
            _table(rows, out)

        _emit(args, [j.as_dict() for j in entries], text)
    elif command == "diff":
        from workbench.diff.cli import run_diff_command

        return run_diff_command(ws, args, out)
    elif command == "recover":
        done = ws.recover()
        _emit(
            args,
            [j.as_dict() for j in done],
            lambda: out.write("".join(f"recovered {j.op} of {j.env}\n" for j in done) or "nothing to recover\n"),
        )
    return 0


def _open_screen(args: argparse.Namespace) -> int:
    ws = _open(args)
    try:
        from workbench.tui.app import run_app
    except ImportError:
        sys.stderr.write("the screen is not available in this build; use the commands (repro-tui --help).\n")
        return 1
    return run_app(ws)


def _demo(args: argparse.Namespace, progress: StepPrinter) -> int:
    from workbench.backends.local import free_port, port_open
    from workbench.demo import DEMO_PORT, build_demo, default_demo_path
    from workbench.workspace import Workspace

    path = Path(args.path).expanduser().resolve() if args.path else default_demo_path()
    port = DEMO_PORT
    if port_open(port):  # another demo's prod runs: this one takes a free port
        port = free_port(set())
    progress("building the demo shop")
    build_demo(path, port=port)
    ws = Workspace(path)
    if not args.no_start:
        progress("starting prod")
        ws.start("prod")
    progress.done()
    if args.no_open or args.json:
        _emit(args, {"path": str(path)}, lambda: sys.stdout.write(f"{path}\n"))
        if not args.json:
            sys.stderr.write(f"demo workspace ready. Next: cd {path} && repro-tui fork prod bug1\n")
        return 0
    try:
        from workbench.tui.app import run_app
    except ImportError:
        sys.stdout.write(f"demo workspace: {path}\nnext: cd {path} && repro-tui fork prod bug1\n")
        return 0
    return run_app(ws)
