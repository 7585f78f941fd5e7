"""The post-mortem, assembled from the evidence: the journal, the check results, the promoted
commits (their trailers and key-level config diffs), the data the clones changed and
prod's drift.

``gather`` reads them into a ``PostMortem`` (plain data, JSON-ready); ``workbench.postmortem_md``
writes it as Markdown. The same inputs give the same document: times are the recorded
ones (written in UTC), everything is in a stable order, and there is no "now" unless the
caller passes a relative ``--since``. Every text is masked by the workspace's redactor.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.check_results import CheckResult, latest_by, verdict
from workbench.errors import InvalidInput, NotFound, Refused, ReproError
from workbench.names import FORKED, PROD, check_env_name

if TYPE_CHECKING:
    from workbench.model import JournalEntry
    from workbench.workspace import Workspace

from workbench.diff.model import group_name

EXAMPLE_KEYS = 3          # example keys shown per table
TRAILER = re.compile(r"^(Repro-[A-Za-z-]+):\s*(.*)$")


@dataclass
class PostMortem:
    workspace: str
    envs: list[str]                                   # the clones it covers
    since: float | None
    checks: list[dict[str, Any]] = field(default_factory=list)     # declared: name, request, expectation
    summary: list[dict[str, Any]] = field(default_factory=list)    # per check: what happened, when
    timeline: list[dict[str, Any]] = field(default_factory=list)   # journal entries
    results: list[dict[str, Any]] = field(default_factory=list)    # every check result in scope
    drift: dict[str, Any] | None = None
    clones: list[dict[str, Any]] = field(default_factory=list)     # per clone: commits, data changes

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_since(text: str, now: float) -> float:
    """``2026-01-01``, ``2026-01-01 10:00``, ``2026-01-01T10:00:00Z`` (local time unless a zone is
    given), or a span back from now: ``30m``, ``2h``, ``1d``."""
    value = text.strip()
    span = re.fullmatch(r"(\d+)\s*([mhdw])", value)
    if span:
        n, unit = int(span[1]), span[2]
        return now - n * {"m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"--since {text!r}: not a time.",
                           "Write a date and time (2026-01-01 10:00, local time; add Z for UTC) or a span "
                           "back from now (30m, 2h, 1d).") from None
    return when.timestamp()


def utc(ts: float | None) -> str:
    """``2026-01-01 10:02:03 UTC``: one zone, so the document reads the same everywhere."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def gather(ws: Workspace, envs: list[str] | None = None, since: float | None = None,
           with_drift: bool = True) -> PostMortem:
    journal = [e for e in reversed(ws.state.journal(None, 1_000_000)) if since is None or e.started_at >= since]
    known = list(dict.fromkeys(e.env for e in journal if e.env and e.env != PROD))
    known += [r["name"] for r in ws.state.envs() if r["name"] not in known]
    for env in envs or []:
        check_env_name(env, allow_prod=False)
        if env not in known:
            raise NotFound(f"no clone named {env!r} in the journal{' since then' if since else ''}.",
                           f"Clones it knows: {', '.join(known) or 'none yet'}.")
    scope = list(dict.fromkeys(envs)) if envs else known
    pm = PostMortem(workspace=ws.spec.name, envs=scope, since=since)
    pm.checks = [{"name": c.name, "request": c.request, "service": c.service, "expect": c.expectation,
                  "clones_only": not c.on_prod} for c in ws.spec.checks.values()]
    covered = {PROD, *scope}
    entries = [e for e in journal if (e.env is None or e.env in covered) and _worth_telling(e)]
    pm.timeline = [_event(e) for e in entries]
    results = [r for r in ws.check_results(since=since) if r.env in covered]
    pm.results = [_result(r) for r in results]
    commits = _commits(ws, entries)
    pm.summary = _summary(ws, scope, results, commits)
    pm.clones = [_clone(ws, env, [c for c in commits if c["env"] == env], entries) for env in scope]
    if with_drift:
        pm.drift = _drift(ws)
    return _masked(ws, pm)


def _masked(ws: Workspace, pm: PostMortem) -> PostMortem:
    """The same post-mortem with every text masked by value and by shape."""
    data = ws.redactor.tree(pm.as_dict())
    return PostMortem(**data)


def _worth_telling(entry: JournalEntry) -> bool:
    """The background ready copies are told only when they failed."""
    return not (entry.op == "prepare-ready" and entry.outcome in ("ok", "running"))


def _event(e: JournalEntry) -> dict[str, Any]:
    args = e.args or {}
    what = f"{e.op} {e.env}" if e.env else e.op
    if e.op == "fork":
        what += f" from {args.get('source', '?')}" + (" with prod's drift" if args.get("with_drift") else "")
    elif e.op in ("reset", "snapshot", "delete-snapshot") and args.get("snapshot"):
        what += f" {'to' if e.op == 'reset' else ''} {args['snapshot']}".replace("  ", " ")
    elif e.op == "check" and args.get("trigger") not in (None, "cli", "key"):
        what += f" (after {args['trigger']})"
    elif e.op == "promote" and args.get("merge"):
        what += " --merge"
    return {"id": e.id, "at": e.started_at, "when": utc(e.started_at), "who": f"{e.user}@{e.host}", "what": what,
            "op": e.op, "env": e.env, "seconds": e.seconds, "outcome": e.outcome, "note": e.message or ""}


def _result(r: CheckResult) -> dict[str, Any]:
    return {"check": r.name, "env": r.env, "at": r.at, "when": utc(r.at), "outcome": r.outcome, "short": r.short,
            "status": r.status, "latency_ms": r.latency_ms, "runs": len(r.runs), "reason": r.reason,
            "trigger": r.trigger}


# --- what happened to each check -----------------------------------------------------------------

def _summary(ws: Workspace, scope: list[str], results: list[CheckResult],
             commits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = list(dict.fromkeys([*ws.spec.checks, *(r.name for r in results)]))
    latest = latest_by(results)
    out = []
    for name in names:
        mine = [r for r in results if r.name == name]
        prod = [r for r in mine if r.env == PROD]
        item: dict[str, Any] = {"check": name, "prod_failed": _first(prod, "fail"), "prod_last": _brief(
            latest.get((PROD, name))), "clones": []}
        for env in scope:
            seen = [r for r in mine if r.env == env]
            if not seen:
                continue
            reproduced = _first(seen, "fail")
            fixed = None
            if reproduced:
                fixed = next((_brief(r) for r in seen if r.passed and r.at >= reproduced["at"]), None)
            commit = None
            if fixed:
                commit = next((c for c in commits if c["env"] == env and c["promoted_at"] >= fixed["at"]), None)
            item["clones"].append({"env": env, "reproduced": reproduced, "fixed": fixed,
                                   "commit": {k: commit[k] for k in ("sha", "subject", "at")} if commit else None,
                                   "now": verdict(env, latest.get((env, name)), latest.get((PROD, name)),
                                                  ws.spec.checks[name].on_prod if name in ws.spec.checks
                                                  else True).text})
        out.append(item)
    return out


def _first(results: list[CheckResult], outcome: str) -> dict[str, Any] | None:
    return next((_brief(r) for r in results if r.outcome == outcome), None)


def _brief(r: CheckResult | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {"at": r.at, "when": utc(r.at), "outcome": r.outcome, "short": r.short, "latency_ms": r.latency_ms}


# --- commits and the data each clone changed ---------------------------------------------------------

def _commits(ws: Workspace, entries: list[JournalEntry]) -> list[dict[str, Any]]:
    """The commits promote made (in the order it made them), with trailers and config diffs."""
    repo = ws.repo()
    out: list[dict[str, Any]] = []
    for e in entries:
        if e.op != "promote" or e.outcome not in ("ok", "completed-by-recovery") or not e.message:
            continue
        info = repo.commit_info(e.message.split()[0])
        if info is None:
            continue
        lines = info["message"].splitlines()
        trailers = [f"{m[1]}: {m[2]}" for m in (TRAILER.match(line) for line in lines) if m]
        out.append({"env": e.env, "sha": info["sha"], "short": info["sha"][:12], "subject": lines[0] if lines else "",
                    "author": f"{info['author']} <{info['email']}>", "at": float(info["at"]),
                    "when": utc(float(info["at"])), "branch": f"repro/{e.env}", "merged": bool(e.args.get("merge")),
                    "promoted_at": e.started_at,   # git keeps whole seconds; the journal orders it among the checks
                    "trailers": trailers, "files": [f for f in info["files"].splitlines() if f],
                    "config": _commit_config(ws, repo, info)})
    return out


def _commit_config(ws: Workspace, repo: Any, info: dict[str, str]) -> list[str]:
    """The commit's changes, key by key for config files (as the diff shows them)."""
    from workbench.diff.render import change_line
    from workbench.diff.values import Shower
    from workbench.drift import file_changes

    files = [f for f in info["files"].splitlines() if f]
    if not files or not info["parent"]:
        return []
    with tempfile.TemporaryDirectory(prefix="repro-report-") as tmp:
        before, after = Path(tmp) / "before", Path(tmp) / "after"
        before.mkdir()
        after.mkdir()
        repo.write_files(info["parent"], files, before)
        repo.write_files(info["sha"], files, after)
        changes = file_changes(files, before, after, Shower(ws.secrets))
    return [change_line(c).strip() for c in changes]


def _clone(ws: Workspace, env: str, commits: list[dict[str, Any]], entries: list[JournalEntry]) -> dict[str, Any]:
    forked = next((e for e in entries if e.op == "fork" and e.env == env and e.outcome == "ok"), None)
    out: dict[str, Any] = {"env": env, "forked": utc(forked.started_at) if forked else None,
                           "source": (forked.args or {}).get("source") if forked else None, "commits": commits,
                           "data": [], "data_note": ""}
    if ws.state.env(env) is None:
        out["data_note"] = f"{env} was destroyed since: the data it changed is gone."
        return out
    refs = [s.name for s in ws.state.snapshots(env) if s.name != FORKED] + [env]
    for ref in refs:
        label = f"{env}@{ref}" if ref != env else env
        try:
            report = ws.diff(f"{env}@{FORKED}", label, sections=["data"], limit=EXAMPLE_KEYS)
        except ReproError as exc:
            out["data"].append({"since": f"{env}@{FORKED}", "until": label, "error": exc.message, "tables": []})
            continue
        tables = []
        for g in report.groups:
            if g.section != "data" or not g.total:
                continue
            keys = [",".join(map(str, c.key)) if c.key is not None else c.path.split(":", 1)[-1]
                    for c in report.data if group_name(c) == g.name]
            tables.append({"table": g.name, "changed": g.changed, "added": g.added, "removed": g.removed,
                           "examples": list(dict.fromkeys(keys))[:EXAMPLE_KEYS]})
        out["data"].append({"since": f"{env}@{FORKED}", "until": label, "tables": tables})
    return out


def _drift(ws: Workspace) -> dict[str, Any]:
    from workbench.drift import prod_drift

    try:
        drift = prod_drift(ws)
    except ReproError as exc:
        return {"error": exc.message}
    return {**drift.as_dict(), "lines": drift.lines()}


def since_of(text: str | None) -> float | None:
    """``--since`` as a time (a relative one counts back from now: the one "now" a report uses)."""
    return parse_since(text, time.time()) if text else None


def report_path(ws: Workspace, output: str | Path) -> Path:
    """Where a report may be written: anywhere but prod's checkout (a file there would be a
    change to prod), ``.repro/`` included."""
    path = Path(output).expanduser().absolute()
    root, repro = ws.root.resolve(), ws.repro_dir.resolve()
    real = path.parent.resolve() / path.name
    if (real == root or root in real.parents) and repro not in real.parents:
        raise Refused(f"{path} is inside prod's checkout: a report there would be a change to prod.",
                      "Write it elsewhere (-o ~/postmortem.md), under .repro/, or print it: repro-tui report > FILE")
    if not real.parent.is_dir():
        raise InvalidInput(f"cannot write {path}: the folder {path.parent} does not exist.",
                           "Create it first, or choose another place for the report.")
    if real.is_dir():
        raise InvalidInput(f"cannot write {path}: it is a folder.", "Name a file, e.g. -o ~/postmortem.md")
    return real


def default_path(ws: Workspace, envs: list[str] | None) -> Path:
    """``.repro/reports/postmortem-bug1.md`` (the screen's key writes there)."""
    folder = ws.repro_dir / "reports"
    folder.mkdir(exist_ok=True)
    return folder / f"postmortem{'-' + '-'.join(envs) if envs else ''}.md"


def write_report(path: Path, text: str) -> None:
    """Whole or not at all: written beside the target, then renamed over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise Refused(f"cannot write {path}: {exc.strerror}.", "Choose another place: -o FILE") from None


__all__ = ["PostMortem", "default_path", "gather", "parse_since", "report_path", "since_of", "utc",
           "write_report"]
