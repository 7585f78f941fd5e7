"""The fence: every write an operation makes passes through one object that knows the
clone's own roots.

Files and folders (made, renamed, deleted, their modes changed), process starts (their
working folder), container and volume actions and SQL against a database are checked
here before they happen. A path is resolved (links followed) before it is judged, and
links are never followed when deleting or changing modes, so a link planted in a
clone's data cannot make repro-tui write, delete or chmod what it points at. Prod is
never a clone: every method refuses it.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from workbench.errors import ProdReadOnly, Refused
from workbench.names import PROD, check_env_name

#: the folders under ``.repro/`` that hold one clone's things, each as ``SUB/ENV``
CLONE_FOLDERS = ("envs", "data", "snapshots", "ready", "undo", "run")


class OutsideClone(Refused):
    """A write that would land outside the clone's own folders."""


class Fence:
    def __init__(self, root: Path, repro_dir: Path) -> None:
        self.root = Path(root)
        self.repro_dir = Path(repro_dir)
        # what is prod's: its checkout (the workspace root) and its stores' files, wherever they are
        self.prod_paths: list[Path] = [self.root]

    def is_prods(self, env: str, path: Path | str) -> bool:
        """Whether ``path`` (links followed) leads to prod's files or another clone's, rather than
        to ``env``'s own or to a place outside the workspace."""
        real = _real(Path(path))
        return any(_within(real, _real(p)) for p in self.prod_paths) and not self.owns(env, real, follow=True)

    # what a clone owns ---------------------------------------------------------------------
    def clone(self, env: str, what: str = "writing") -> str:
        """``env`` itself, once proven to be a clone's name (never prod)."""
        if env == PROD:
            raise ProdReadOnly(what)
        check_env_name(env)
        return env

    def roots(self, env: str) -> list[Path]:
        self.clone(env)
        return [self.repro_dir / sub / env for sub in CLONE_FOLDERS]

    def worktree(self, env: str) -> Path:
        return self.repro_dir / "envs" / self.clone(env)

    def owns(self, env: str, path: Path | str, follow: bool = False) -> bool:
        """Whether ``path`` (its folder resolved, its last part followed only with ``follow``)
        is inside one of ``env``'s folders."""
        real = _real(Path(path)) if follow else _resolved_parent(Path(path))
        return any(_within(real, _real(root)) for root in self.roots(env))

    def path(self, env: str, path: Path | str, what: str = "write", follow: bool = False) -> Path:
        """``path``, once proven to be the clone's own; else OutsideClone (or ProdReadOnly).
        ``follow``: the path is opened, so where its links lead must be the clone's too."""
        p = Path(path)
        if not self.owns(env, p) or (follow and not self.owns(env, p, follow=True)):
            raise OutsideClone(f"refusing to {what} {p}: it is outside {env}'s own folders "
                               f"({self.repro_dir}/*/{env}).",
                               "A clone's files, data and settings may not point at prod or at another clone.")
        return p

    # filesystem actions ---------------------------------------------------------------------
    def mkdir(self, env: str, path: Path | str) -> Path:
        p = self.path(env, path, "make")
        p.mkdir(parents=True, exist_ok=True)
        return p

    def replace(self, env: str, src: Path | str, dst: Path | str) -> None:
        os.replace(self.path(env, src, "move"), self.path(env, dst, "replace"))

    def unlink(self, env: str, path: Path | str) -> None:
        p = self.path(env, path, "delete")
        if p.is_symlink() or p.exists():
            p.unlink()

    def write_text(self, env: str, path: Path | str, text: str) -> None:
        p = self.path(env, path, "write")
        if p.is_symlink():
            p.unlink()
        p.write_text(text)

    def rmtree(self, env: str, path: Path | str) -> None:
        """Delete a file or a folder tree; links are removed, never followed, and a read-only
        folder is made writable only when it is really inside the clone."""
        p = self.path(env, path, "delete")
        if not p.exists() and not p.is_symlink():
            return
        if p.is_symlink() or not p.is_dir():
            p.unlink()
            return

        def onerror(func, failed, _exc_info):  # read-only snapshot files and folders
            parent = os.path.dirname(failed)
            if not os.path.islink(parent) and self.owns(env, parent):
                os.chmod(parent, 0o700)
            if not os.path.islink(failed):
                try:
                    os.chmod(failed, 0o600)
                except OSError:
                    pass
            func(failed)

        shutil.rmtree(p, onerror=onerror)

    def make_read_only(self, env: str, path: Path | str) -> None:
        for p in _files(self.path(env, path, "change the mode of")):
            mode = os.lstat(p).st_mode
            os.chmod(p, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), follow_symlinks=False)

    def make_writable(self, env: str, path: Path | str) -> None:
        for p in _files(self.path(env, path, "change the mode of")):
            os.chmod(p, os.lstat(p).st_mode | stat.S_IWUSR, follow_symlinks=False)

    def data(self, env: str, path: Path | str) -> Path:
        """A clone's copy of a store, before it is read or used: it and every link inside it
        lead into the clone's own folders (a link to prod's file would make a snapshot copy
        prod's data and the clone's service write prod's)."""
        p = self.path(env, path, "use the data at", follow=True)
        files = [str(p)] if p.is_file() else []
        if p.is_dir():
            for folder, dirs, names in os.walk(p):
                for name in dirs + names:
                    child = os.path.join(folder, name)
                    if os.path.islink(child) and self.is_prods(env, child):
                        raise OutsideClone(f"refusing to use {p}: {child} is a link to {os.path.realpath(child)}, "
                                           f"outside {env}'s own folders.",
                                           "Remove the link; a clone's data may not point at prod's or another "
                                           "clone's.")
                files += [os.path.join(folder, name) for name in names]
        shared = self._hard_linked_to_prod(files)
        if shared:
            mine, prods = shared
            raise OutsideClone(f"refusing to use {p}: {mine} is the same file as prod's {prods} (a hard link: "
                               f"a write to one is a write to the other).",
                               f"Remove {mine} and run: repro-tui reset {env} (or fork again); a clone's data "
                               "may not share prod's.")
        return p

    def _hard_linked_to_prod(self, files: list[str]) -> tuple[str, str] | None:
        """A file of ``files`` that is one of prod's stores' files under another name (a hard
        link), and that file of prod's. Only files with more than one name are looked up, so a
        clone's own copies cost one ``lstat`` each."""
        linked = {}
        for f in files:
            st = os.lstat(f)
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                linked[(st.st_dev, st.st_ino)] = f
        if not linked:
            return None
        for root in self.prod_paths[1:]:
            for f in _files(Path(root)):
                st = os.lstat(f)
                if (st.st_dev, st.st_ino) in linked:
                    return linked[(st.st_dev, st.st_ino)], f
        return None

    # processes, containers, databases ---------------------------------------------------
    def process(self, env: str, cwd: Path | str, argv: Sequence[str] = (),
                settings: Mapping[str, str] | None = None) -> Path:
        """A clone's process runs in the clone's own folders (its worktree, usually), and none
        of its arguments, nor any of the settings repro-tui gives it, names prod's data (a
        store's file): as a path, after ``=``, in a list or in a URL (``sqlite:////…``)."""
        where = self.path(env, cwd, "run a process in", follow=True)
        data = [_real(p) for p in self.prod_paths[1:]]
        given = [(f"the argument {arg!r}", arg) for arg in argv]
        given += [(f"the setting {name}={value!r}", value) for name, value in (settings or {}).items()]
        for what, value in given:
            for part in _path_candidates(value):
                target = _real(Path(os.path.join(where, part)))
                if any(_within(target, d) for d in data) and not self.owns(env, target, follow=True):
                    raise OutsideClone(f"refusing to start a process of {env} with {what}: it names "
                                       f"{target}, which is prod's, not {env}'s.",
                                       "A clone's service uses its own worktree and data: use {worktree} and "
                                       "{stores.NAME.path} in repro.yaml instead of prod's paths.")
        return where

    def container(self, env: str, labels: dict[str, str], workspace_id: str, what: str) -> None:
        """A container, volume or network action on a clone's object: labelled with this
        workspace and this clone. Prod's objects carry no such labels."""
        self.clone(env, what)
        if labels.get("repro.workspace") != workspace_id or labels.get("repro.env") != env:
            raise OutsideClone(f"refusing to {what}: it is not {env}'s (labels say "
                               f"{labels.get('repro.env') or 'no clone'}).",
                               "repro-tui only changes the containers and volumes it made for a clone.")


def _files(root: Path) -> Iterable[str]:
    """Every regular file under ``root`` (links skipped: chmod would follow them)."""
    if root.is_symlink():
        return
    if root.is_file():
        yield str(root)
        return
    for folder, _dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(folder, f)
            if not os.path.islink(p):
                yield p


def _path_candidates(value: str) -> set[str]:
    """The paths a word may name: itself, what follows ``=``, each item of a ``:``/``,``/``;``
    list, and a URL's path both as absolute and as relative (``sqlite:///../data/x.db``)."""
    parts = {value, *re.split(r"[=:,;]", value)}
    parts |= {p.lstrip("/") for p in parts if p.startswith("//")}
    return {p for p in parts if "/" in p or p in (".", "..")}


def _real(p: Path) -> Path:
    return Path(os.path.realpath(p))


def _resolved_parent(p: Path) -> Path:
    p = Path(os.path.abspath(p))
    return _real(p.parent) / p.name


def _within(p: Path, root: Path) -> bool:
    return p == root or root in p.parents
