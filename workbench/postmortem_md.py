"""A ``PostMortem`` as a Markdown document. Pure: the same post-mortem, the same bytes."""

from __future__ import annotations

from typing import Any

from workbench.formats import duration
from workbench.postmortem import PostMortem, utc


def markdown(pm: PostMortem) -> str:
    title = f"# Post-mortem: {pm.workspace}" + (f" — {', '.join(pm.envs)}" if pm.envs else "")
    out = [title, "", _scope(pm), ""]
    out += _summary(pm)
    out += _timeline(pm)
    out += _drift(pm)
    for clone in pm.clones:
        out += _clone(clone)
    out += _results(pm)
    return "\n".join(out).rstrip() + "\n"


def cell(value: Any) -> str:
    """A table cell: one line, pipes escaped."""
    return str("" if value is None else value).replace("\n", " ").replace("|", "\\|").strip()


def code(value: Any) -> str:
    text = str(value)
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}"


def _scope(pm: PostMortem) -> str:
    times = [e["at"] for e in pm.timeline]
    covers = f"Covers {', '.join(pm.envs)} and prod" if pm.envs else "Covers prod (no clone yet)"
    if times:
        covers += f", from {utc(min(times))} to {utc(max(times))}"
    if pm.since is not None:
        covers += f" (entries since {utc(pm.since)})"
    return (covers + ". Written by repro-tui from its journal, the check results, the promoted commits and "
            "the diffs; secrets are masked.")


def _summary(pm: PostMortem) -> list[str]:
    out = ["## Summary", ""]
    if not pm.summary:
        out += ["No check is declared in repro.yaml, so no failure was measured (add a `checks:` section).", ""]
    declared = {c["name"]: c for c in pm.checks}
    for item in pm.summary:
        check = declared.get(item["check"])
        how = f" ({code(check['request'])}" + (f" on {check['service']}" if check.get("service") else "") + \
            f"; passes with {check['expect']})" if check else ""
        out.append(f"- **{item['check']}**{how}")
        failed = item["prod_failed"]
        if failed:
            out.append(f"  - failed on prod at {failed['when']}: {failed['short']}")
        elif item["prod_last"]:
            out.append(f"  - prod: {item['prod_last']['short']} ({item['prod_last']['outcome']}) at "
                       f"{item['prod_last']['when']}")
        for clone in item["clones"]:
            parts = []
            if clone["reproduced"]:
                parts.append(f"reproduced it at {clone['reproduced']['when']}: {clone['reproduced']['short']}")
            if clone["fixed"]:
                parts.append(f"passed at {clone['fixed']['when']}: {clone['fixed']['short']}")
            if clone["commit"]:
                c = clone["commit"]
                parts.append(f"fixed by {code(c['sha'][:12])} “{c['subject']}” at {utc(c['at'])}")
            if parts:
                out.append(f"  - {clone['env']} " + "; ".join(parts))
            out.append(f"  - now: {clone['now']}")
    return [*out, ""] if pm.summary else out


def _timeline(pm: PostMortem) -> list[str]:
    out = ["## Timeline", ""]
    if not pm.timeline:
        return [*out, "Nothing in the journal.", ""]
    out += ["| when | who | what | took | outcome | note |", "| --- | --- | --- | ---: | --- | --- |"]
    for e in pm.timeline:
        took = duration(e["seconds"]) if e["seconds"] is not None else "cut off"
        out.append(f"| {e['when']} | {cell(e['who'])} | {cell(e['what'])} | {took} | {cell(e['outcome'])} | "
                   f"{cell(e['note'])} |")
    return [*out, ""]


def _drift(pm: PostMortem) -> list[str]:
    if pm.drift is None:
        return []
    out = ["## Prod's drift", ""]
    if "error" in pm.drift:
        return [*out, f"Not read: {pm.drift['error']}", ""]
    if not pm.drift["count"]:
        return [*out, f"None: prod runs what {pm.drift['branch']} and its declaration say.", ""]
    return [*out, "What prod runs that its branch or its declaration does not say, when this was written:", "",
            "```", *pm.drift["lines"], "```", ""]


def _clone(clone: dict[str, Any]) -> list[str]:
    out = [f"## {clone['env']}", ""]
    if clone["forked"]:
        out += [f"Forked from {clone['source']} at {clone['forked']}.", ""]
    for c in clone["commits"]:
        out += [f"### Promoted {code(c['short'])}: {c['subject']}", "",
                f"- on {code(c['branch'])}" + (" (merged into prod's branch)" if c["merged"] else "") +
                f", by {c['author']}, at {c['when']}",
                f"- files: {', '.join(code(f) for f in c['files']) or 'none'}"]
        out += [f"- {code(t)}" for t in c["trailers"]]
        if c["config"]:
            out += ["", "Key by key:", "", "```", *c["config"], "```"]
        out.append("")
    out += ["### Data changes seen", ""]
    if clone["data_note"]:
        return [*out, clone["data_note"], ""]
    for d in clone["data"]:
        out.append(f"{code(d['since'])} → {code(d['until'])}:")
        out.append("")
        if d.get("error"):
            out += [f"Not compared: {d['error']}", ""]
            continue
        if not d["tables"]:
            out += ["No data change.", ""]
            continue
        out += ["| table | changed | added | removed | example keys |", "| --- | ---: | ---: | ---: | --- |"]
        for t in d["tables"]:
            examples = ", ".join(code(k) for k in t["examples"])
            out.append(f"| {cell(t['table'])} | {t['changed']} | {t['added']} | {t['removed']} | {cell(examples)} |")
        out.append("")
    out += ["Changes a reset took back before any snapshot kept them are not in this record.", ""]
    return out


def _results(pm: PostMortem) -> list[str]:
    out = ["## Check results", ""]
    if not pm.results:
        return [*out, "No check has run.", ""]
    out += ["| when | check | env | outcome | answer | median latency | runs | after | why |",
            "| --- | --- | --- | --- | --- | ---: | ---: | --- | --- |"]
    for r in pm.results:
        latency = f"{r['latency_ms']:.1f} ms" if r["latency_ms"] is not None else "-"
        out.append(f"| {r['when']} | {cell(r['check'])} | {cell(r['env'])} | {r['outcome']} | {cell(r['short'])} | "
                   f"{latency} | {r['runs']} | {cell(r['trigger'])} | {cell(r['reason'])} |")
    return [*out, ""]
