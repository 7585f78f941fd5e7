"""promote: commit what changed in a clone on its branch, with trailers that say where it
came from (and, with ``--merge``, merge it into prod's branch: the one write to prod's
git that repro-tui ever makes, never finished by recovery, only taken back)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import InvalidInput, Refused
from workbench.model import PromoteResult
from workbench.names import FORKED
from workbench.ops.base import Operation, Progress
from workbench.ops.cleanup import BRANCH_PREFIX
from workbench.private import as_the_user
from workbench.spec import SPEC_FILE, load_spec

if TYPE_CHECKING:
    from workbench.journal import Txn
    from workbench.workspace import Workspace


def preview(ws: Workspace, env: str) -> tuple[list[str], str]:
    """The files a promote would commit and their diff, secrets masked."""
    from workbench.vcs import Worktree

    ws.envs.require_clone(env, "promote")
    wt = Worktree(ws.worktree(env))
    return wt.changed_files(), ws.redactor.diff_text(wt.diff_text(), env)


class Promote(Operation):
    name = "promote"
    summary = "commit a clone's changes on its branch (and merge into prod's with --merge)"

    def __init__(self, ws: Workspace, env: str, message: str, merge: bool = False,
                 progress: Progress | None = None) -> None:
        from workbench.vcs import Worktree

        super().__init__(ws, env, progress)
        row = ws.envs.require_clone(env, "promote")
        if not message or not message.strip():
            raise InvalidInput("a commit message is needed.", f"repro-tui promote {env} -m 'Fix ...'")
        self.merge = merge
        self.branch = row["branch"]
        self.wt = Worktree(ws.worktree(env))
        name, email = self.wt.identity()
        if not name or not email:
            raise Refused("git does not know who you are, so it cannot commit.",
                          'Set it once: git config --global user.name "Your Name" && '
                          'git config --global user.email you@example.com')
        self.repo = ws.repo()
        prod_branch = ws.spec.prod_branch
        self.changed = self.wt.changed_files()
        if not self.changed and not self.repo.commits_not_in(self.branch, prod_branch):
            raise Refused(f"nothing to promote: {env} has no change and no commit that prod's branch lacks.",
                          f"Change code or config in {ws.worktree(env)} first.")
        self.prod_wt = None
        if merge:
            self.prod_wt = Worktree(ws.root)
            if self.prod_wt.current_branch() != prod_branch:
                raise Refused(f"prod's checkout is not on {prod_branch}, so it cannot be merged into.",
                              f"Check out {prod_branch} in {ws.root}, or promote without --merge.")
            if self.prod_wt.is_dirty():
                raise Refused("prod's checkout has uncommitted changes; a merge could mix them in.",
                              f"Commit or stash them in {ws.root}, or promote without --merge.")
        bad = [f for f in self.changed if f.startswith(".repro/") or _is_store_file(ws, env, f)]
        if bad:
            raise Refused(f"refusing to commit data files: {', '.join(bad[:5])}.",
                          "Data never goes into git: move them out of the worktree or git-ignore them.")
        leaving = [f for f in self.changed if _leaves(ws.worktree(env), f)]
        if leaving:   # merged into prod's checkout, such a link would make prod read (or write) another file
            raise Refused(f"refusing to commit links that lead out of {env}'s worktree: {', '.join(leaving[:5])}.",
                          "Commit the file itself, or a link to a file inside the repository.")
        if SPEC_FILE in self.changed:   # on prod's branch, a file that does not load stops every command
            try:
                load_spec(ws.worktree(env))
            except InvalidInput as exc:
                raise Refused(f"refusing to commit {SPEC_FILE}: it does not load ({exc.message}).",
                              f"Fix it in {ws.worktree(env)} first; repro-tui reads it on prod's branch once "
                              "promoted.") from None
        snaps = ws.state.snapshots(env)
        snap = row["last_reset"] or (snaps[-1].name if snaps else FORKED)
        found = ws.redactor.found_in(message, env)
        if found:   # refused, not altered: a commit message is history, and history is shared
            raise InvalidInput(f"the commit message holds the value of {', '.join(found)}, which is secret.",
                               "Write the message without it (say which setting changed, not its value).")
        self.text = message.strip()
        self.full = (f"{self.text}\n\nRepro-Environment: {env}\nRepro-Forked-From: {row['forked_commit']}\n"
                     f"Repro-Snapshot: {env}@{snap}\n")

    def args(self) -> dict[str, Any]:
        return {"env": self.env, "merge": self.merge}

    def check(self) -> None:
        self.ws.envs.require_clone(self.env, "promote")

    def prepare(self) -> None:
        """The checks run once more: each one's outcome on prod and the clone goes into a trailer."""
        from workbench.ops.check import check_trailers

        self.full += self.ws.redactor.text(check_trailers(self.ws, self.env, self.progress), self.env)

    def run(self, txn: Txn) -> PromoteResult:
        ws, env = self.ws, self.env
        commit = self.wt.head()
        txn.note(head_before=commit)
        if self.changed:
            with txn.step("commit"):
                commit = self.wt.commit_all(self.full)
        merged = None
        if self.merge and self.prod_wt is not None:
            prod_branch = ws.spec.prod_branch
            txn.note(merging=True, prod_before=self.repo.rev(prod_branch), merged_commit=commit)
            with txn.step(f"merge into {prod_branch}"), as_the_user():   # prod's files keep the user's modes
                self.prod_wt.merge(self.branch, f"Merge {self.branch}: {self.text.splitlines()[0]}\n\n"
                                                f"Repro-Environment: {env}\n")
            merged = prod_branch
        txn.message = commit[:12]
        return PromoteResult(env=env, branch=self.branch, commit=commit, files=self.changed, merged_into=merged)

    @classmethod
    def undo(cls, ws: Workspace, args: dict[str, Any]) -> str:
        """A merge into prod's branch is never finished by recovery, only taken back: a merge
        cut off after git made it (but before the promote was recorded) is undone too."""
        repo = ws.repo()
        if not args.get("merging"):  # cut off before any merge: a commit on the clone's own branch stays
            head = repo.rev(BRANCH_PREFIX + args.get("env", ""))
            committed = args.get("head_before") not in (None, head)
            return "completed-by-recovery" if committed and not args.get("merge") else "rolled-back"
        if repo.merge_in_progress():
            repo.abort_merge()
        before, theirs = args.get("prod_before"), args.get("merged_commit")
        branch = ws.spec.prod_branch
        now = repo.rev(branch)
        if not before or not now or now == before:
            return "rolled-back"
        if now != theirs and repo.parents(now) != [before, theirs]:
            return f"failed (rollback: {branch} moved on after the merge, so the merge was left in place)"
        from workbench.vcs import Worktree

        repo.move_branch_back(branch, before, now, checked_out=Worktree(ws.root).current_branch() == branch)
        return "rolled-back"


def _leaves(worktree: Path, rel: str) -> bool:
    """Whether ``rel`` is a link whose target lies outside the worktree (or in its .git)."""
    path = worktree / rel
    if not path.is_symlink():
        return False
    real = Path(os.path.realpath(path))
    top = Path(os.path.realpath(worktree))
    return not (real == top or top in real.parents) or ".git" in real.relative_to(top).parts


def _is_store_file(ws: Workspace, env: str, rel: str) -> bool:
    base = ws.worktree(env)
    for st in ws.spec.stores.values():
        if st.path and not Path(st.path).is_absolute():
            p = (base / st.path).resolve()
            f = (base / rel).resolve()
            if f == p or p in f.parents:
                return True
    return False
