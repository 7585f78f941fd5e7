"""Names of environments and snapshots: they become branches, folders and container names."""

from __future__ import annotations

import re

from workbench.errors import InvalidInput

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
PROD = "prod"
FORKED = "forked"
RESERVED_ENV = {PROD}
RESERVED_SNAPSHOT = {FORKED}


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid name, or None. Used by the CLI and the fork dialog."""
    if not name:
        return "a name is needed"
    if len(name) > 32:
        return f"too long ({len(name)} characters, at most 32)"
    if not name[0].isascii() or not name[0].islower() or not name[0].isalpha():
        return "must start with a lower-case letter a-z"
    bad = sorted({c for c in name if not (c.isascii() and (c.islower() or c.isdigit() or c == "-"))})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return f"may hold only a-z, 0-9 and '-' (not {shown})"
    return None


def check_env_name(name: str, *, allow_prod: bool = True) -> str:
    problem = name_problem(name)
    if problem:
        raise InvalidInput(
            f"invalid environment name {name!r}: {problem}.",
            "Use 1-32 characters: a lower-case letter, then a-z, 0-9 or '-', e.g. bug-1042.",
        )
    if not allow_prod and name in RESERVED_ENV:
        raise InvalidInput(f"{name!r} is reserved for the environment every clone is forked from.",
                           "Choose another name, e.g. bug-1042.")
    return name


def check_snapshot_name(name: str, *, allow_reserved: bool = True) -> str:
    problem = name_problem(name)
    if problem:
        raise InvalidInput(
            f"invalid snapshot name {name!r}: {problem}.",
            "Use 1-32 characters: a lower-case letter, then a-z, 0-9 or '-', e.g. before-refund.",
        )
    if not allow_reserved and name in RESERVED_SNAPSHOT:
        raise InvalidInput(f"{name!r} is the snapshot every fork records; choose another name.")
    return name


def first_free(prefix: str, taken: set[str] | frozenset[str]) -> str:
    """The first of ``PREFIX1``, ``PREFIX2``, ... not in ``taken`` (``s1`` for snapshots, ``bug1`` for clones)."""
    n = 1
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}"
