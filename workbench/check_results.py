"""What a check said of an environment, and what it means beside prod.

Pure data and functions (no I/O): the runner (``workbench.checks``) makes ``CheckResult``s,
the state keeps them, and the command line, the screen, the promote trailers and the
post-mortem all read them through ``verdict`` — one wording everywhere:
"reproduces: 500 on prod and bug1", then "fixed in bug1: 200; prod still 500".
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.names import PROD

if TYPE_CHECKING:
    from workbench.spec import CheckSpec

OUTCOMES = ("pass", "fail", "error", "skipped")
STATE_COLUMNS = ("env", "name", "at", "outcome", "request", "kind", "status", "latency_ms", "reason", "failure",
                 "body", "runs", "trigger", "journal_id")


@dataclass
class CheckResult:
    name: str
    env: str
    outcome: str                    # pass | fail | error (could not run) | skipped (clones only)
    request: str                    # "GET /orders/1042", or the command
    kind: str = "http"              # http | command
    status: int | None = None       # the HTTP status (of most runs), or the command's exit code
    latency_ms: float | None = None  # the median of the runs
    reason: str = ""                # why it failed or could not run ("status 500, expected 200")
    failure: str = ""               # what failed, in a word: status | text | json | latency | ""
    body: str = ""                  # the start of the body or the output, secrets masked
    runs: list[dict[str, Any]] = field(default_factory=list)   # [{"status": 200, "ms": 3.1}]
    at: float = 0.0
    trigger: str | None = None      # cli, key, fork, reset, start, promote, ...
    journal_id: int | None = None

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    @property
    def short(self) -> str:
        """The result in a few characters: ``500``, ``200 (812 ms)``, ``exit 1``, ``no answer``."""
        if self.outcome == "error":
            return "no answer" if self.kind == "http" else "did not run"
        if self.outcome == "skipped":
            return "clones only"
        head = f"exit {self.status}" if self.kind == "command" else str(self.status)
        if self.failure == "latency" and self.latency_ms is not None:
            return f"{head} ({self.latency_ms:.0f} ms)"
        if self.failure in ("text", "json"):
            return f"{head} ({self.failure} differs)"
        return head

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def row(self) -> dict[str, Any]:
        """The state's columns (``check_results``)."""
        return {k: getattr(self, k) for k in STATE_COLUMNS}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CheckResult:
        facts: dict[str, Any] = {k: row[k] for k in STATE_COLUMNS if k in row}
        return cls(**facts)


def median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# --- side by side with prod ---------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    """One check on one environment, beside prod: ``headline: detail``."""

    state: str      # reproduces | fixed | passes | fails | only-here | not-run | error
    headline: str   # "reproduces", "fixed in bug1"
    detail: str     # "500 on prod and bug1", "200; prod still 500"

    @property
    def text(self) -> str:
        return f"{self.headline}: {self.detail}" if self.detail else self.headline

    @property
    def symbol(self) -> str:
        return VERDICT_SYMBOLS[self.state]

    @property
    def tone(self) -> str:
        return VERDICT_TONES[self.state]


VERDICT_SYMBOLS = {"reproduces": "✖", "fixed": "✓", "passes": "✓", "fails": "✖", "only-here": "✖",
                   "not-run": "?", "error": "!"}
VERDICT_TONES = {"reproduces": "bad", "fixed": "good", "passes": "good", "fails": "bad", "only-here": "bad",
                 "not-run": "quiet", "error": "warn"}


def verdict(env: str, mine: CheckResult | None, prod: CheckResult | None, on_prod: bool = True) -> Verdict:
    """What a check says of ``env`` beside prod, from the latest result of each (a check that
    runs on clones only has nothing of prod's beside it)."""
    if env == PROD:
        if mine is None:
            return Verdict("not-run", "not run on prod yet", "")
        if mine.outcome in ("error", "skipped"):
            return Verdict("error" if mine.outcome == "error" else "not-run", f"{mine.short} on prod",
                           mine.reason if mine.outcome == "error" else "")
        return Verdict("passes" if mine.passed else "fails", "passes on prod" if mine.passed else "fails on prod",
                       mine.short)
    if mine is None:
        return Verdict("not-run", f"not run in {env} yet", "")
    if mine.outcome == "error":
        return Verdict("error", f"could not run in {env}", mine.reason)
    beside = _prod_words(prod) if on_prod else "not checked (clones only)"
    if not on_prod or prod is None or prod.outcome in ("error", "skipped"):
        word = "passes" if mine.passed else "fails"
        return Verdict("passes" if mine.passed else "fails", f"{word} in {env}", f"{mine.short}; prod {beside}")
    if not prod.passed and not mine.passed:
        same = prod.short == mine.short
        return Verdict("reproduces", "reproduces", f"{mine.short} on prod and {env}" if same
                       else f"{prod.short} on prod, {mine.short} in {env}")
    if not prod.passed and mine.passed:
        return Verdict("fixed", f"fixed in {env}", f"{mine.short}; prod still {prod.short}")
    if prod.passed and not mine.passed:
        return Verdict("only-here", f"fails in {env} only", f"{mine.short}; prod {prod.short}")
    same = prod.short == mine.short
    return Verdict("passes", "passes", f"{mine.short} on prod and {env}" if same
                   else f"{mine.short} in {env}, {prod.short} on prod")


def _prod_words(prod: CheckResult | None) -> str:
    if prod is None:
        return "not run"
    if prod.outcome == "skipped":
        return "not checked (clones only)"
    if prod.outcome == "error":
        return "did not answer"
    return prod.short


def judge(check: CheckSpec, env: str, latest: dict[tuple[str, str], CheckResult]) -> Verdict:
    """The verdict of a declared check on ``env``, from the latest results of each environment."""
    return verdict(env, latest.get((env, check.name)), latest.get((PROD, check.name)), check.on_prod)


def latest_by(results: list[CheckResult]) -> dict[tuple[str, str], CheckResult]:
    """(env, check) -> the latest result, from results oldest first."""
    out: dict[tuple[str, str], CheckResult] = {}
    for r in results:
        out[(r.env, r.name)] = r
    return out


def trailer(name: str, env: str, mine: CheckResult | None, prod: CheckResult | None, on_prod: bool = True) -> str:
    """``order-1042: prod fail 500, bug1 pass 200`` — a commit trailer's value."""
    def side(who: str, r: CheckResult | None) -> str:
        if r is None:
            return f"{who} not run"
        return f"{who} {r.outcome} {r.short}" if r.outcome in ("pass", "fail") else f"{who} {r.short}"

    if not on_prod:
        return f"{name}: {side(env, mine)} (clones only)"
    return f"{name}: {side(PROD, prod)}, {side(env, mine)}"


# --- what differs between two responses -------------------------------------------------------

def body_lines(body: str) -> list[str]:
    """A body as lines to compare: JSON pretty-printed with sorted keys, else as it is."""
    try:
        return json.dumps(json.loads(body), indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    except (ValueError, TypeError):
        return body.splitlines()


def body_diff(left: str, right: str, left_name: str, right_name: str, context: int = 2) -> list[str]:
    """The unified diff of two bodies (empty when they are the same)."""
    return list(difflib.unified_diff(body_lines(left), body_lines(right), left_name, right_name, n=context,
                                     lineterm=""))


def response_lines(env: str, mine: CheckResult | None, prod: CheckResult | None, on_prod: bool = True,
                   bodies: bool = True) -> list[str]:
    """Status, latency and body of the two sides, and how the bodies differ: the detail of a
    check on a clone beside prod (the CLI's ``check ENV NAME`` and the screen's detail view)."""
    lines = []
    sides = [(PROD, prod), (env, mine)] if env != PROD and on_prod else [(env, mine)]
    width = max(len(who) for who, _ in sides)
    for who, r in sides:
        lines.append(f"  {who.ljust(width)}  {result_line(r)}")
    if env != PROD:
        lines.append(f"  {verdict(env, mine, prod, on_prod).text}")
    shown = [(who, r.body) for who, r in sides if r is not None and r.body] if bodies else []
    if len(shown) == 2:
        diff = body_diff(shown[0][1], shown[1][1], shown[0][0], shown[1][0])
        lines.append("  body: the same on both" if not diff else "  body, prod against the clone:")
        lines += [f"    {line}" for line in diff[2:]]
    elif shown:
        lines.append(f"  body of {shown[0][0]}:")
        lines += [f"    {line}" for line in body_lines(shown[0][1])[:20]]
    return lines


def check_header(check: CheckSpec) -> str:
    """``order-1042  GET /orders/1042 → web  (passes with status 200)``."""
    to = f" → {check.service}" if check.service else ""
    return f"{check.name}  {check.request}{to}  (passes with {check.expectation})"


def detail_lines(check: CheckSpec, env: str, latest: dict[tuple[str, str], CheckResult],
                 bodies: bool = True) -> list[str]:
    """One check on ``env`` beside prod: its request, each side's answer, the verdict and (with
    ``bodies``) how the bodies differ."""
    mine, prod = latest.get((env, check.name)), latest.get((PROD, check.name))
    return [check_header(check), *response_lines(env, mine, prod if env != PROD else None, check.on_prod, bodies)]


def result_line(r: CheckResult | None) -> str:
    """``✖ 500 · median 3 ms of 3 · status 500, expected 200``."""
    if r is None:
        return "? not run yet"
    symbol = {"pass": "✓", "fail": "✖", "error": "!", "skipped": "·"}.get(r.outcome, "?")
    parts = [f"{symbol} {r.short}"]
    if r.latency_ms is not None:
        parts.append(f"median {r.latency_ms:.0f} ms of {len(r.runs) or 1}")
    if r.reason and not r.passed:
        parts.append(r.reason)
    return " · ".join(parts)
