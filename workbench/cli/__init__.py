"""The command line: one subcommand per operation, each a call on the Workspace.

``parser`` holds the arguments, ``commands`` one handler per subcommand (a table),
``output`` what is written and how (every byte through the redactor).

Exit codes: 0 done; 1 a valid request that could not be done; 2 invalid input;
130 interrupted. Errors are one or two lines on stderr (and JSON on stdout with --json).
"""

from __future__ import annotations

import errno
import sqlite3
import sys

from workbench.cli.hangup import OUTLIVE, outlive_hangup
from workbench.cli.output import fail
from workbench.cli.parser import build_parser
from workbench.errors import Interrupted, ReproError, system_error

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    from workbench.cli.commands import COMMANDS, Call

    parser = build_parser()
    raw = list(sys.argv[1:] if argv is None else argv)
    want_json = "--json" in raw
    debug = "--debug" in raw
    call: Call | None = None
    try:
        args = parser.parse_args(raw)
        if args.command in OUTLIVE:
            outlive_hangup()
        call = Call(args)
        return COMMANDS[args.command](call)
    except KeyboardInterrupt:
        return fail(Interrupted("interrupted."), want_json, call.out.redactor if call else None)
    except ReproError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        return fail(exc, want_json, call.out.redactor if call else None)
    except BrokenPipeError:
        return 0
    except (OSError, sqlite3.Error) as exc:   # the disk, the permissions, a read-only state
        if isinstance(exc, OSError) and exc.errno == errno.EIO:   # the terminal hung up as the result was written
            return 0
        if debug:
            raise
        return fail(system_error(exc), want_json, call.out.redactor if call else None)
    except Exception as exc:  # a bug: still no traceback unless asked for
        if debug:
            raise
        return fail(ReproError(f"unexpected {type(exc).__name__}: {exc}",
                               "This is a bug in repro-tui. Run again with --debug to see where, and report it."),
                    want_json, call.out.redactor if call else None)
