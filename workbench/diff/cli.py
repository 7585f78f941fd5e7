"""``repro-tui diff A B [--json] [--only-unexpected] [--limit N] [--include-scrubbed]``.

The CLI module parses the arguments and calls ``run_diff_command``; everything the
subcommand does lives here, so the CLI stays a thin table of subcommands.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from workbench.errors import InvalidInput


def add_diff_arguments(parser: Any) -> None:
    """The subcommand's arguments, for an argparse (sub)parser."""
    parser.add_argument("a", metavar="A", help="left side: prod, a clone, or CLONE@SNAPSHOT")
    parser.add_argument("b", metavar="B", help="right side: prod, a clone, or CLONE@SNAPSHOT")
    parser.add_argument("--only-unexpected", action="store_true",
                        help="hide what the clone differs by on purpose (overrides, scrubbed columns)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="at most N changes per config file, service and table")
    parser.add_argument("--include-scrubbed", action="store_true",
                        help="compare scrubbed columns row by row instead of one entry per column")


def run_diff_command(ws: Any, args: Any, out: Any, write_json: Callable[..., None] | None = None) -> int:
    """Diff two sides and print the report: JSON with ``--json`` (through ``write_json`` when
    given), else readable lines (coloured when ``out`` is a terminal). Errors are raised as
    workbench.errors."""

    a = getattr(args, "a", None) or getattr(args, "left", None)
    b = getattr(args, "b", None) or getattr(args, "right", None)
    if not a or not b:
        raise InvalidInput("diff needs two sides, e.g. repro-tui diff prod b1.",
                           "Name each side as prod, a clone (b1) or a snapshot (b1@forked).")
    limit = getattr(args, "limit", None)
    if limit is not None and limit < 1:
        raise InvalidInput(f"--limit must be 1 or more, not {limit}.", "Leave it out to see every change.")
    report = ws.diff(a, b, only_unexpected=bool(getattr(args, "only_unexpected", False)),
                     include_scrubbed=bool(getattr(args, "include_scrubbed", False)), limit=limit)
    if getattr(args, "json", False):
        if write_json is not None:
            write_json(report.to_json(limit), ensure_ascii=False)
        else:
            out.write(json.dumps(report.to_json(limit), ensure_ascii=False, indent=2, default=str) + "\n")
        return 0
    from workbench.diff.render import render

    color = getattr(args, "color", None)
    if color is None:
        isatty = getattr(out, "isatty", None)
        color = bool(isatty and isatty())
    for line in render(report, color=color, limit=limit):
        out.write(line + "\n")
    return 0
