"""Git: branches, worktrees, snapshots of a worktree, commits. Through GitPython."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from workbench.errors import Refused

try:
    import git
    from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError
except ImportError as exc:  # GitPython refuses to import without a git executable
    raise Refused("git is not installed here (or not on PATH), and repro-tui keeps code and config on git "
                  "branches.", "Install git (e.g. apt-get install git), then run the command again.") from exc


def _err(exc: GitCommandError) -> str:
    text = (exc.stderr or exc.stdout or str(exc)).strip()
    text = text.replace("stderr: ", "").strip("' \n")
    return text.splitlines()[-1] if text else str(exc)


class Repo:
    """The workspace's git repository (prod's checkout is its main worktree)."""

    def __init__(self, root: Path) -> None:
        try:
            self.repo = git.Repo(root, expand_vars=False)   # a folder may be named "$HOME"
        except (InvalidGitRepositoryError, NoSuchPathError):
            raise Refused(
                f"{root} is not a git repository.",
                "repro-tui keeps code and config on git branches: run 'git init' and commit first.",
            ) from None
        self.root = root
        self.git = self.repo.git

    def exclude_repro(self) -> None:
        """Keep ``.repro/`` out of git through .git/info/exclude (never prod's .gitignore)."""
        info = Path(self.repo.common_dir) / "info"
        info.mkdir(parents=True, exist_ok=True)
        exclude = info / "exclude"
        text = exclude.read_text() if exclude.exists() else ""
        if "/.repro/" not in text.splitlines():
            exclude.write_text(text + ("" if text.endswith("\n") or not text else "\n") + "/.repro/\n")

    def rev(self, ref: str) -> str | None:
        try:
            return self.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}")
        except GitCommandError:
            return None

    def branch_exists(self, branch: str) -> bool:
        return self.rev(f"refs/heads/{branch}") is not None

    def is_tracked(self, path: Path) -> bool:
        try:
            rel = path.resolve().relative_to(self.root.resolve())
        except ValueError:
            return False
        try:
            self.git.ls_files("--error-unmatch", "--", str(rel))
            return True
        except GitCommandError:
            return False

    # worktrees
    def add_worktree(self, path: Path, branch: str, start: str) -> None:
        try:
            self.git.worktree("add", "--quiet", "-b", branch, str(path), start)
        except GitCommandError as exc:
            raise Refused(f"git could not make the worktree: {_err(exc)}") from None

    def remove_worktree(self, path: Path) -> None:
        try:
            self.git.worktree("remove", "--force", "--force", str(path))
        except GitCommandError:
            pass
        if path.exists():
            import shutil

            shutil.rmtree(path, ignore_errors=True)
        self.git.worktree("prune")

    def delete_branch(self, branch: str) -> None:
        try:
            self.git.branch("-D", branch)
        except GitCommandError:
            pass

    def commits_not_in(self, branch: str, base: str) -> int:
        try:
            return int(self.git.rev_list("--count", f"{base}..{branch}"))
        except GitCommandError:
            return 0

    # refs
    def refs_under(self, prefix: str) -> list[str]:
        """Every ref whose name starts with ``prefix`` (e.g. ``refs/repro/b1/``)."""
        try:
            return self.git.for_each_ref("--format=%(refname)", prefix).split()
        except GitCommandError:
            return []

    def delete_ref(self, ref: str) -> None:
        """Delete one of repro-tui's refs. Its callers hold the workspace's writer lock, and
        repro-tui writes these refs only under it: a ``.lock`` file left beside the ref is the
        remains of a git killed with its repro-tui, and is removed rather than obeyed."""
        for attempt in (1, 2):
            try:
                self.git.update_ref("-d", ref)
                return
            except GitCommandError as exc:
                stale = Path(self.repo.common_dir) / f"{ref}.lock"
                if attempt == 2 or "lock" not in str(exc).lower() or not ref.startswith("refs/repro/"):
                    return
                stale.unlink(missing_ok=True)

    def parents(self, commit: str) -> list[str]:
        return self.git.rev_list("--parents", "-n", "1", commit).split()[1:]

    # taking a merge back (a promote --merge cut off, or failed after git made it)
    def merge_in_progress(self) -> bool:
        return (Path(self.repo.git_dir) / "MERGE_HEAD").exists()

    def abort_merge(self) -> None:
        try:
            self.git.merge("--abort")
        except GitCommandError:
            pass

    def move_branch_back(self, branch: str, to: str, expected: str, checked_out: bool) -> None:
        """Point ``branch`` at ``to`` again; on the checked-out branch with ``reset --keep``,
        which never loses a local change."""
        if checked_out:
            self.git.reset("--keep", "--quiet", to)
        else:
            self.git.update_ref(f"refs/heads/{branch}", to, expected)

    # reading prod's checkout and history for drift and the post-mortem: no optional locks,
    # so not even the index's stat cache is written
    def drifted(self, rev: str, pathspecs: list[str]) -> dict[str, str]:
        """path -> git's status letter (M, A, D, T) of every file under ``pathspecs`` that
        differs between the checkout and ``rev``; untracked files that git does not ignore: A."""
        env = {"GIT_OPTIONAL_LOCKS": "0"}
        out: dict[str, str] = {}
        parts = self.git.diff("--no-renames", "--name-status", "-z", rev, "--", *pathspecs, env=env).split("\0")
        for status, path in zip(parts[0::2], parts[1::2], strict=False):
            if path:
                out[path] = status[:1]
        for path in self.git.ls_files("--others", "--exclude-standard", "-z", "--", *pathspecs, env=env).split("\0"):
            if path:
                out[path] = "A"
        return out

    def write_files(self, rev: str, paths: list[str], folder: Path) -> None:
        """Write the files ``paths`` as they are in ``rev`` under ``folder`` (those it has)."""
        for path in paths:
            try:
                data = self.git.cat_file("blob", f"{rev}:{path}", stdout_as_string=False,
                                         strip_newline_in_stdout=False)
            except GitCommandError:
                continue   # not in that revision: added since
            dest = folder / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)

    def commit_info(self, rev: str) -> dict[str, str] | None:
        """A commit's sha, author, time, message and the files it changed against its first parent."""
        try:
            head = self.git.show("-s", "--format=%H%x00%an%x00%ae%x00%at%x00%P%x00%B", rev)
            files = self.git.diff_tree("-r", "--no-commit-id", "--name-only", "--no-renames", "-m",
                                       "--first-parent", rev)
        except GitCommandError:
            return None
        sha, name, email, at, parents, body = head.split("\0", 5)
        return {"sha": sha, "author": name, "email": email, "at": at, "parent": parents.split(" ")[0],
                "message": body.strip(), "files": files}

    def extract_tree(self, tree: str, folder: Path) -> None:
        """Write the files of a tree (or commit) into ``folder`` (``git archive | tar -x``)."""
        import io
        import tarfile

        data = self.repo.git.archive("--format=tar", tree, stdout_as_string=False)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(folder, filter="data")


class Worktree:
    """A clone's worktree (or prod's checkout)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.repo = git.Repo(path, expand_vars=False)
        self.git = self.repo.git

    def head(self) -> str:
        return self.repo.head.commit.hexsha

    def is_dirty(self) -> bool:
        return self.repo.is_dirty(untracked_files=True)

    def changed_files(self) -> list[str]:
        out = self.git.status("--porcelain", "-uall", "-z")
        files = []
        parts = out.split("\0")
        i = 0
        while i < len(parts):
            item = parts[i]
            if len(item) > 3:
                files.append(item[3:])
                if item[0] in "RC":
                    i += 1
            i += 1
        return files

    def tree_commit(self, message: str) -> str:
        """A commit of the worktree as it is (tracked changes and untracked files, .gitignore
        respected), made without touching the index or the worktree."""
        with tempfile.TemporaryDirectory() as tmp:
            index = os.path.join(tmp, "index")
            env = {"GIT_INDEX_FILE": index}
            self.git.read_tree("HEAD", env=env)
            self.git.add("-A", env=env)
            tree = self.git.write_tree(env=env)
        return self.git.commit_tree(tree, "-p", "HEAD", "-m", message)

    def restore_tree(self, tree_commit: str) -> None:
        """Make the worktree match a tree commit (its HEAD commit checked out, the rest as changes)."""
        parent = self.git.rev_parse(f"{tree_commit}^")
        self.git.reset("--hard", "--quiet", parent)
        self.git.clean("-fdq")
        self.git.read_tree(tree_commit)
        self.git.checkout_index("-a", "-f")
        self.git.reset("--quiet")

    def keep_ref(self, ref: str, sha: str) -> None:
        self.git.update_ref(ref, sha)

    def drop_ref(self, ref: str) -> None:
        try:
            self.git.update_ref("-d", ref)
        except GitCommandError:
            pass

    def identity(self) -> tuple[str | None, str | None]:
        def get(key: str) -> str | None:
            try:
                return self.git.config("--get", key) or None
            except GitCommandError:
                return None

        name = os.environ.get("GIT_AUTHOR_NAME") or get("user.name")
        email = os.environ.get("GIT_AUTHOR_EMAIL") or get("user.email")
        return name, email

    def diff_text(self) -> str:
        """The unified diff of every uncommitted change, untracked files included."""
        with tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
            self.git.read_tree("HEAD", env=env)
            self.git.add("-A", env=env)
            return self.git.diff("--cached", "HEAD", env=env)

    def commit_all(self, message: str) -> str:
        self.git.add("-A")
        self.git.commit("-q", "-m", message)
        return self.head()

    def current_branch(self) -> str | None:
        try:
            return self.repo.active_branch.name
        except TypeError:
            return None

    def merge(self, branch: str, message: str) -> None:
        try:
            self.git.merge("--no-edit", "-m", message, branch)
        except GitCommandError as exc:
            conflicts = [
                line[3:]
                for line in self.git.status("--porcelain").splitlines()
                if line[:2] in ("UU", "AA", "DU", "UD", "AU", "UA", "DD")
            ]
            try:
                self.git.merge("--abort")
            except GitCommandError:
                pass
            if conflicts:
                raise Refused(
                    f"the merge into prod's branch conflicts in: {', '.join(conflicts)}.",
                    "Nothing was merged. Merge by hand, or rebase the clone's branch on prod's first.",
                ) from None
            raise Refused(f"git could not merge: {_err(exc)}") from None
