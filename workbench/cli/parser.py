"""The command line's arguments: one subparser per subcommand, each with its help."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from workbench import __version__
from workbench.errors import InvalidInput

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


def _port(text: str) -> int:
    """A TCP port: 1 to 65535."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, not {n}")
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
    p.add_argument("--port", type=_port, default=None,
                   help="prod's port (default 18080, or a free one, said, when 18080 is taken)")
    cmd("list", "list the environments")
    p = cmd("status", "one environment in detail")
    p.add_argument("env", help="prod or a clone")
    p = cmd("fork", "fork prod (or a clone, or CLONE@SNAPSHOT) into a new clone")
    p.add_argument("source", help="prod, a clone, or CLONE@SNAPSHOT")
    p.add_argument("name", help="the new clone's name: a-z, 0-9 and '-', e.g. bug-1042")
    p.add_argument("--with-drift", action="store_true",
                   help="give the clone prod's live files and container settings where they differ from prod's "
                        "branch (see: repro-tui drift), so a hot fix can be reviewed and promoted")
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
    for name, what in (("start", "start an environment's services"), ("stop", "stop an environment's services"),
                       ("restart", "stop and start an environment's services, e.g. after a config change")):
        p = cmd(name, what + "; prod's (local backend only) after typing prod")
        p.add_argument("env", help="prod or a clone")
        p.add_argument("--yes", "-y", action="store_true", help="prod: do not ask")
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
    p = cmd("mail", "the mail a clone's services sent, captured by its mail sink (nothing is delivered)")
    p.add_argument("env", help="a clone")
    p.add_argument("id", nargs="?", type=_count, help="show this message (its headers and text)")
    p = cmd("diff", "what differs between two environments (or ENV@SNAPSHOT)")
    p.add_argument("a", metavar="A", help="left side: prod, a clone, or CLONE@SNAPSHOT")
    p.add_argument("b", metavar="B", help="right side, e.g. the clone")
    p.add_argument("--only-unexpected", action="store_true", help="hide what a clone differs by on purpose")
    p.add_argument("--include-scrubbed", action="store_true", help="compare scrubbed columns row by row")
    p.add_argument("--limit", type=int, default=None, help="at most N changes per section/table")
    p = cmd("serve", "serve the screen in a browser (127.0.0.1, protected by a token)")
    p.add_argument("--port", type=_port, default=8765, help="the local port, 1-65535 (default 8765)")
    p = cmd("init", "write a commented repro.yaml for a running docker compose project")
    p.add_argument("project", nargs="?", help="the compose project's name (default: the only one running)")
    cmd("recover", "roll back or finish operations that were cut off")
    add_incident_commands(cmd)
    return parser


def add_incident_commands(cmd: Any) -> None:
    """check, drift and report: reproduce, explain and write up an incident."""
    p = cmd("check", "run repro.yaml's checks on an environment, beside prod (exit 1 when one fails on it)",
            epilog="A check says whether an environment shows the failure (repro.yaml, section checks). Each "
                   "runs on ENV and on prod beside it; prod only ever receives GET or HEAD. Checks also run "
                   "after every fork, reset and start. Exit 0 when every check passes on ENV, 1 when one fails "
                   "or cannot run.")
    p.add_argument("env", help="prod or a clone")
    p.add_argument("name", nargs="?", help="one check (default: all), shown with both responses and their "
                                           "differences")
    cmd("drift", "what prod runs that its branch or its declaration does not say (files, containers)",
        epilog="Files: prod's checkout against its branch, under config_files, repro.yaml and the files its "
               "services name. Containers (docker): each one as it runs against repro.yaml or the compose file. "
               "Read only; secrets masked. Carry it into a clone: repro-tui fork prod NAME --with-drift")
    p = cmd("report", "write the post-mortem in Markdown: summary, timeline, drift, commits, data, checks",
            epilog="Assembled from the journal, the check results, the promoted commits and the diffs. The same "
                   "inputs give the same document (times in UTC); secrets are masked. Printed, or written with "
                   "-o (never inside prod's checkout).")
    p.add_argument("envs", nargs="*", metavar="ENV", help="the clones it covers (default: every clone)")
    p.add_argument("--since", metavar="TIME", help="only what happened since: 2026-01-01 10:00 (local time; "
                                                    "Z for UTC) or a span back from now: 30m, 2h, 1d")
    p.add_argument("-o", "--output", metavar="FILE", help="write it to FILE instead of printing it")
