"""One handler per subcommand, and the table that maps each name to its handler.

A handler gets a ``Call`` (the parsed arguments, the workspace opened on first use, the
output and the step printer) and returns the exit code. Every text goes through
``call.out``, so through the workspace's redactor.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.cli.output import Out, StepPrinter
from workbench.errors import InvalidInput
from workbench.formats import age, size
from workbench.names import PROD

if TYPE_CHECKING:
    from workbench.workspace import Workspace


class Call:
    """One run of one subcommand."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Out(bool(args.json))
        self.progress = StepPrinter(sys.stderr.isatty() and not args.json)
        self._ws: Workspace | None = None

    @property
    def ws(self) -> Workspace:
        """The workspace, opened (and what was cut off recovered) on first use; from then
        on the output and the steps are masked with its secrets too."""
        if self._ws is None:
            from workbench.workspace import Workspace

            ws = Workspace.open(self.args.workspace)
            self.out.redactor = self.progress.redactor = ws.redactor
            for found in ws.try_recover():
                sys.stderr.write(f"{'note' if found.done else 'warning'}: {ws.redactor.text(found.sentence())}.\n")
            self._ws = ws
        return self._ws

    def done(self) -> None:
        self.progress.done()


def _now() -> float:
    return time.time()


# --- reading -------------------------------------------------------------------------------

def cmd_list(c: Call) -> int:
    envs = c.ws.list_envs()
    pending = c.ws.pending()

    def text() -> None:
        rows = [["NAME", "KIND", "STATE", "BRANCH", "AGE", "SNAPSHOTS", "PORTS", "OWNER"]]
        for e in envs:
            ports = ",".join(str(s.get("port")) for s in e.services.values() if s.get("port"))
            rows.append([e.name, e.kind, e.state, e.branch, age(e.created_at, _now()),
                         str(len(e.snapshots)) if e.kind == "clone" else "-", ports or "-", e.owner or "-"])
        c.out.table(rows)
        for e in envs:
            if e.restart_needed:
                c.out.write(f"! {e.name}: restart needed, {_changed(e.restart_needed)} changed since its services "
                            f"started (repro-tui restart {e.name})\n")
        for p in pending:
            c.out.write(f"! {p.op} of {p.env} was cut off; the next command that changes something recovers it "
                        "(or: repro-tui recover)\n")

    c.out.emit([e.as_dict() for e in envs], text)
    return 0


def cmd_status(c: Call) -> int:
    e = c.ws.status(c.args.env)
    w = c.out.write

    def text() -> None:
        w(f"{e.name} ({e.kind})  {e.state}\n  branch    {e.branch}\n  worktree  {e.worktree}\n")
        if e.source:
            w(f"  forked    from {e.source} at {str(e.forked_commit)[:12]}, {age(e.created_at, _now())} ago"
              f"{f' by {e.owner}' if e.owner else ''}\n")
        if e.restart_needed:
            w(f"  restart needed: {_changed(e.restart_needed)} changed since the services started "
              f"(repro-tui restart {e.name})\n")
        for name, s in e.services.items():
            extra = f" port {s['port']}" if s.get("port") else ""
            extra += f" pid {s['pid']}" if s.get("pid") else ""
            w(f"  service   {name}: {s['state']}{extra}\n")
        for name, st in e.stores.items():
            w(f"  store     {name} ({st['type']}): {st['location']}\n")
        if e.kind == "clone":
            w(f"  snapshots {', '.join(s.name for s in e.snapshots) or 'none'}\n")
            if e.last_reset:
                from workbench.owners import undo_refusal

                mine = e.can_undo_reset and undo_refusal(e.name, e.last_reset_by, e.last_reset_at, _now()) is None
                undo = f" (undo: repro-tui reset {e.name} --undo)" if mine else ""
                by = f" by {e.last_reset_by}, {age(e.last_reset_at, _now())} ago" if e.last_reset_by else ""
                w(f"  last reset to {e.last_reset}{by}{undo}\n")

    c.out.emit(e.as_dict(), text)
    return 0


def _changed(files: list[str]) -> str:
    return ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")


def cmd_snapshots(c: Call) -> int:
    snaps = c.ws.snapshots(c.args.env)

    def text() -> None:
        rows = [["NAME", "AGE", "SIZE", "COMMIT", "READY"]]
        for s in snaps:
            rows.append([s.name, age(s.created_at, _now()), size(s.size),
                         (s.commit or "-")[:10] + ("+" if s.dirty else ""), "yes" if s.ready else "-"])
        c.out.table(rows)
        c.out.write(f"{len(snaps)} snapshot(s), {size(sum(s.size for s in snaps))} on disk\n")

    c.out.emit([s.as_dict() for s in snaps], text)
    return 0


def cmd_logs(c: Call) -> int:
    a = c.args
    for line in c.ws.logs(a.env, a.service, follow=a.follow, lines=a.lines):
        c.out.write(line + "\n")
        if a.follow:
            c.out.flush()
    return 0


def cmd_log(c: Call) -> int:
    entries = c.ws.journal(c.args.env, c.args.limit)

    def text() -> None:
        rows = [["WHEN", "OP", "ENV", "OUTCOME", "TOOK", "WHO", "NOTE"]]
        for j in reversed(entries):
            rows.append([time.strftime("%m-%d %H:%M:%S", time.localtime(j.started_at)), j.op, j.env or "-",
                         j.outcome, f"{j.seconds:.2f}s" if j.seconds is not None else "-", f"{j.user}@{j.host}",
                         (j.message or "").splitlines()[0][:60] if j.message else ""])
        c.out.table(rows)

    c.out.emit([j.as_dict() for j in entries], text)
    return 0


def cmd_diff(c: Call) -> int:
    from workbench.diff.cli import run_diff_command

    return run_diff_command(c.ws, c.args, c.out, write_json=c.out.write_json)


def cmd_shell(c: Call) -> int:
    env = c.ws.shell_env(c.args.env)
    if c.args.json:  # shown, so masked: only the shell itself gets the secret values
        c.out.write_json(c.ws.redactor.settings(env))
        return 0
    shell = os.environ.get("SHELL", "/bin/sh")
    sys.stderr.write(f"a shell in {c.args.env} ({env['REPRO_WORKTREE']}); exit to leave\n")
    os.chdir(env["REPRO_WORKTREE"])
    os.execvpe(shell, [shell], {**os.environ, **env})


def cmd_mail(c: Call) -> int:
    a = c.args
    if a.id is not None:
        m = c.ws.mail_message(a.env, a.id)
        c.out.emit(m.as_dict(), lambda: c.out.write(m.text()))
        return 0
    mails = c.ws.mail(a.env)

    def text() -> None:
        if not mails:
            c.out.write(f"no mail captured in {a.env} yet: what its services send arrives here.\n")
            return
        rows = [["ID", "TIME", "FROM", "TO", "SUBJECT"]]
        for m in mails:
            rows.append([str(m.id), time.strftime("%m-%d %H:%M:%S", time.localtime(m.time)), m.sender[:40],
                         ", ".join(m.to)[:40], m.subject[:60]])
        c.out.table(rows)
        c.out.write(f"{len(mails)} message(s), none delivered. Read one: repro-tui mail {a.env} ID\n")

    c.out.emit([m.as_dict() for m in mails], text)
    return 0


# --- changing --------------------------------------------------------------------------------

def cmd_fork(c: Call) -> int:
    a = c.args
    e = c.ws.fork(a.source, a.name, progress=c.progress, with_drift=a.with_drift)
    c.done()
    carried = c.ws.journal(e.name, 5)[-1].message if a.with_drift else None

    def text() -> None:
        c.out.write(f"forked {a.source} into {e.name} in {time.perf_counter() - c.progress.t0:.2f} s\n")
        for name, s in e.services.items():
            if s.get("port"):
                c.out.write(f"  {name}: http://127.0.0.1:{s['port']}\n")
        c.out.write(f"  worktree: {e.worktree}\n  reset its data any time: repro-tui reset {e.name}\n")
        if carried:
            c.out.write(f"  {carried}\n")
        c.out.write(f"  its mail: repro-tui mail {e.name}\n")
        for note in e.notes:
            c.out.write(f"  {note}\n")
        _verdicts(c, e.name)

    c.out.emit({**e.as_dict(), **_checks_json(c, e.name), **({"drift": carried} if a.with_drift else {})}, text)
    return 0


def _verdicts(c: Call, env: str) -> None:
    """The checks' verdicts after an operation that ran them (none when repro.yaml has none)."""
    from workbench.cli.incident import verdict_lines

    c.out.write("".join(line + "\n" for line in verdict_lines(c.ws, env)))


def _checks_json(c: Call, env: str) -> dict:
    from workbench.cli.incident import checks_json

    return {"checks": checks_json(c.ws, env)} if c.ws.spec.checks else {}


def cmd_snapshot(c: Call) -> int:
    a = c.args
    if a.delete:
        c.ws.delete_snapshot(a.env, a.delete)
        c.out.emit({"deleted": a.delete, "env": a.env},
                   lambda: c.out.write(f"deleted snapshot {a.env}@{a.delete}\n"))
        return 0
    s = c.ws.snapshot(a.env, a.name, progress=c.progress)
    c.done()
    c.out.emit(s.as_dict(), lambda: c.out.write(f"snapshot {a.env}@{s.name} ({size(s.size)})\n"))
    return 0


def cmd_reset(c: Call) -> int:
    a = c.args
    if a.undo:
        if a.snapshot:
            raise InvalidInput("--undo takes no snapshot name.", f"repro-tui reset {a.env} --undo")
        c.ws.undo_reset(a.env, progress=c.progress)
        c.done()
        c.out.emit({"env": a.env, "undone": True}, lambda: c.out.write(
            f"{a.env}: back to the state before the last reset (again: repro-tui reset {a.env} --undo)\n"))
        return 0
    t0 = time.perf_counter()
    s = c.ws.reset(a.env, a.snapshot, code=a.code, progress=c.progress)
    c.done()
    took = time.perf_counter() - t0

    def text() -> None:
        c.out.write(f"{a.env} reset to {s.name} in {took * 1000:.0f} ms (undo: repro-tui reset {a.env} --undo)\n")
        _verdicts(c, a.env)

    c.out.emit({"env": a.env, "snapshot": s.name, "seconds": took, **_checks_json(c, a.env)}, text)
    return 0


def cmd_promote(c: Call) -> int:
    a = c.args
    r = c.ws.promote(a.env, a.message, merge=a.merge, progress=c.progress)
    c.done()

    def text() -> None:
        c.out.write(f"committed {r.commit[:12]} on {r.branch} ({len(r.files)} file(s))\n")
        if r.merged_into:
            c.out.write(f"merged into {r.merged_into}\n")

    c.out.emit(r.as_dict(), text)
    return 0


def confirmed(c: Call, what: str, question: str, refusal: str) -> bool:
    """A typed confirmation of ``what cmd ENV`` (the environment's name, typed on the terminal),
    or ``--yes``; without a terminal and without ``--yes``, invalid input (exit 2)."""
    a = c.args
    if a.yes:
        return True
    if not sys.stdin.isatty():
        raise InvalidInput(f"{what} {a.env} needs a confirmation, and there is no terminal to ask.",
                           f"Add --yes: repro-tui {what} {a.env} --yes")
    from workbench.names import check_env_name

    check_env_name(a.env)
    answer = input(f"{question} Type {a.env} to confirm: ")
    if answer.strip() != a.env:
        sys.stderr.write(f"{refusal}\n")
        return False
    return True


def cmd_destroy(c: Call) -> int:
    a = c.args
    if not confirmed(c, "destroy", f"Destroy {a.env}: its services, worktree, data and snapshots?", "not destroyed."):
        return 1
    notes = c.ws.destroy(a.env, force=a.force, progress=c.progress)
    c.done()
    c.out.emit({"destroyed": a.env, "notes": notes},
               lambda: c.out.write(f"destroyed {a.env}\n" + "".join(f"  {n}\n" for n in notes)))
    return 0


def _services(c: Call, what: str) -> int:
    """start, stop or restart; prod's services only after a typed confirmation (or --yes)."""
    ws, env = c.ws, c.args.env
    if env == PROD:
        ws.envs.check_service_control(env, what)   # refused on Docker before anything is asked
        if not confirmed(c, what, f"{what.capitalize()} prod's services, the environment every clone is forked "
                         "from?", "prod's services were left as they are."):
            return 1
    e = getattr(ws, what)(env, progress=c.progress)
    c.done()
    start = what != "stop"   # start and restart run the checks after them

    def text() -> None:
        c.out.write(f"{e.name}: {e.state}\n")
        if start:
            _verdicts(c, e.name)

    c.out.emit({**e.as_dict(), **(_checks_json(c, e.name) if start else {})}, text)
    return 0


def cmd_start(c: Call) -> int:
    return _services(c, "start")


def cmd_stop(c: Call) -> int:
    return _services(c, "stop")


def cmd_restart(c: Call) -> int:
    return _services(c, "restart")


def cmd_check(c: Call) -> int:
    from workbench.cli.incident import run_check

    return run_check(c)


def cmd_drift(c: Call) -> int:
    from workbench.cli.incident import run_drift

    return run_drift(c)


def cmd_report(c: Call) -> int:
    from workbench.cli.incident import run_report

    return run_report(c)


def cmd_recover(c: Call) -> int:
    found = c.ws.recover()
    c.out.emit([{**r.entry.as_dict(), "recovered": r.outcome, "problem": r.problem or None} for r in found],
               lambda: c.out.write("".join(f"{r.sentence()}\n" for r in found) or "nothing to recover\n"))
    return 0 if all(r.done for r in found) else 1


# --- the rest: the screen, the demo, serve, init ------------------------------------------------

def cmd_screen(c: Call) -> int:
    ws = c.ws
    try:
        from workbench.tui.app import run_app
    except ImportError:
        sys.stderr.write("the screen is not available in this build; use the commands (repro-tui --help).\n")
        return 1
    return run_app(ws)


def cmd_demo(c: Call) -> int:
    from workbench.backends.local import free_port, port_open
    from workbench.demo import DEMO_PORT, build_demo, default_demo_path
    from workbench.demo.guide import demo_guide
    from workbench.errors import Refused
    from workbench.workspace import Workspace

    a = c.args
    path = Path(a.path).expanduser().resolve() if a.path else default_demo_path()
    port, moved = a.port or DEMO_PORT, False
    if port_open(port):
        if a.port:
            raise Refused(f"port {port} on 127.0.0.1 is in use.",
                          f"Stop what uses it (ss -ltnp | grep :{port}), or choose another: repro-tui demo --port N")
        port, moved = free_port(set()), True   # said first thing in the guide below, never silently
    c.progress("building the demo shop")
    build_demo(path, port=port)
    ws = Workspace(path)
    if not a.no_start:
        c.progress("starting prod")
        ws.start("prod")
    c.done()
    text, data = demo_guide(path, port, running=not a.no_start, moved=moved)
    c.out.emit(data, lambda: c.out.write(text))
    c.out.flush()
    if a.no_open or a.json:
        return 0
    try:
        from workbench.tui.app import run_app
    except ImportError:
        return 0
    return run_app(ws)   # the guide stays on the terminal beneath the screen, and is there again after it


def cmd_serve(c: Call) -> int:
    from workbench.tui.serve import serve

    return serve(c.args.workspace, c.args.port)


def cmd_init(c: Call) -> int:
    from workbench.backends.docker_init import run_init

    return run_init(c.args)


COMMANDS: dict[str | None, Callable[[Call], int]] = {
    None: cmd_screen,
    "demo": cmd_demo,
    "list": cmd_list,
    "status": cmd_status,
    "fork": cmd_fork,
    "snapshot": cmd_snapshot,
    "snapshots": cmd_snapshots,
    "reset": cmd_reset,
    "promote": cmd_promote,
    "destroy": cmd_destroy,
    "start": cmd_start,
    "stop": cmd_stop,
    "restart": cmd_restart,
    "logs": cmd_logs,
    "shell": cmd_shell,
    "log": cmd_log,
    "mail": cmd_mail,
    "diff": cmd_diff,
    "serve": cmd_serve,
    "init": cmd_init,
    "recover": cmd_recover,
    "check": cmd_check,
    "drift": cmd_drift,
    "report": cmd_report,
}
