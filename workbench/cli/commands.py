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
        rows = [["NAME", "KIND", "STATE", "BRANCH", "AGE", "SNAPSHOTS", "PORTS"]]
        for e in envs:
            ports = ",".join(str(s.get("port")) for s in e.services.values() if s.get("port"))
            rows.append([e.name, e.kind, e.state, e.branch, age(e.created_at, _now()),
                         str(len(e.snapshots)) if e.kind == "clone" else "-", ports or "-"])
        c.out.table(rows)
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
            w(f"  forked    from {e.source} at {str(e.forked_commit)[:12]}, {age(e.created_at, _now())} ago\n")
        for name, s in e.services.items():
            extra = f" port {s['port']}" if s.get("port") else ""
            extra += f" pid {s['pid']}" if s.get("pid") else ""
            w(f"  service   {name}: {s['state']}{extra}\n")
        for name, st in e.stores.items():
            w(f"  store     {name} ({st['type']}): {st['location']}\n")
        if e.kind == "clone":
            w(f"  snapshots {', '.join(s.name for s in e.snapshots) or 'none'}\n")
            if e.last_reset:
                undo = " (undo: repro-tui reset --undo)" if e.can_undo_reset else ""
                w(f"  last reset to {e.last_reset}{undo}\n")

    c.out.emit(e.as_dict(), text)
    return 0


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


def cmd_destroy(c: Call) -> int:
    a = c.args
    if not a.yes:
        if not sys.stdin.isatty():
            raise InvalidInput(f"destroy {a.env} needs a confirmation, and there is no terminal to ask.",
                               f"Add --yes: repro-tui destroy {a.env} --yes")
        from workbench.names import check_env_name

        check_env_name(a.env)
        answer = input(f"Destroy {a.env}: its services, worktree, data and snapshots? Type its name: ")
        if answer.strip() != a.env:
            sys.stderr.write("not destroyed.\n")
            return 1
    notes = c.ws.destroy(a.env, force=a.force, progress=c.progress)
    c.done()
    c.out.emit({"destroyed": a.env, "notes": notes},
               lambda: c.out.write(f"destroyed {a.env}\n" + "".join(f"  {n}\n" for n in notes)))
    return 0


def _services(c: Call, start: bool) -> int:
    ws = c.ws
    e = (ws.start if start else ws.stop)(c.args.env, progress=c.progress)
    c.done()

    def text() -> None:
        c.out.write(f"{e.name}: {e.state}\n")
        if start:
            _verdicts(c, e.name)

    c.out.emit({**e.as_dict(), **(_checks_json(c, e.name) if start else {})}, text)
    return 0


def cmd_start(c: Call) -> int:
    return _services(c, start=True)


def cmd_stop(c: Call) -> int:
    return _services(c, start=False)


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
    from workbench.workspace import Workspace

    a = c.args
    path = Path(a.path).expanduser().resolve() if a.path else default_demo_path()
    port = DEMO_PORT
    if port_open(port):  # another demo's prod runs: this one takes a free port
        port = free_port(set())
    c.progress("building the demo shop")
    build_demo(path, port=port)
    ws = Workspace(path)
    if not a.no_start:
        c.progress("starting prod")
        ws.start("prod")
    c.done()
    if a.no_open or a.json:
        c.out.emit({"path": str(path)}, lambda: sys.stdout.write(f"{path}\n"))
        if not a.json:
            sys.stderr.write(f"demo workspace ready. Next: cd {path} && repro-tui fork prod bug1\n")
        return 0
    try:
        from workbench.tui.app import run_app
    except ImportError:
        sys.stdout.write(f"demo workspace: {path}\nnext: cd {path} && repro-tui fork prod bug1\n")
        return 0
    return run_app(ws)


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
