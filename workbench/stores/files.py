"""Folder stores (uploads, generated files): a clone's copy is a copy of the folder.

Files are reflinked where the filesystem can (a snapshot of a large uploads folder
then costs one clone per file and no data), folders, symbolic links, mode bits and
modification times are kept. A folder cannot be scrubbed: scrub rules name columns.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from workbench import fsutil
from workbench.errors import InvalidInput, Refused
from workbench.spec import ScrubRule
from workbench.stores.base import FolderStore, Progress


class FilesStore(FolderStore):
    """A folder; a clone's copy is ``.repro/data/ENV/STORE/`` itself."""

    def prod_path(self) -> Path:
        return self.spec.store_path(self.store)

    def prod_location(self) -> str:
        return str(self.prod_path())

    def entry(self, folder: Path) -> Path:
        return Path(folder)

    def _check_prod_folder(self) -> Path:
        path = self.prod_path()
        hint = f"Check stores.{self.name}.path in repro.yaml (relative to the workspace root, or absolute)."
        if not path.exists():
            raise Refused(f"store '{self.name}': prod's folder {path} does not exist.",
                          f"{hint} Create it if prod has no files yet: mkdir -p {path}")
        if not path.is_dir():
            raise Refused(f"store '{self.name}': {path} is not a folder.",
                          f"{hint} A database file is a store of type sqlite.")
        tracked = fsutil.tracked_by_git(self.spec.root, path)
        if tracked:
            more = f" and {len(tracked) - 1} more" if len(tracked) > 1 else ""
            raise Refused(f"store '{self.name}': git tracks files of prod's folder ({tracked[0]}{more}), so "
                          "every clone's worktree would get them besides its own copy.",
                          f"Untrack them (git rm -r --cached {os.path.relpath(path, self.spec.root)}), "
                          "add the folder to .gitignore, and commit.")
        return path

    def check(self, rules: list[ScrubRule]) -> None:
        if rules:
            raise InvalidInput(f"store '{self.name}' is a folder: scrub rules apply to databases only.",
                               f"Remove the rules under clone.scrub.{self.name} in repro.yaml.")
        self._check_prod_folder()

    def copy_from_prod(self, dest_dir: Path, rules: list[ScrubRule], progress: Progress | None = None) -> None:
        self.check(rules)
        src = self._check_prod_folder()
        if progress:
            progress(f"copying {self.name} from prod")
        fsutil.copy_tree(src, dest_dir)
        _relink(Path(dest_dir), src)
        self._copy_links_to_prod(Path(dest_dir), src, progress)

    def _copy_links_to_prod(self, dest: Path, prod: Path, progress: Progress | None) -> None:
        """A link that leads out of the folder into prod's other files (its checkout, another
        store) would let the clone write them: the copy gets the file it points at instead
        (a link to a folder, or to nothing, is left out). Links elsewhere are kept."""
        prod_real = os.path.realpath(prod)
        for folder, link in _links(dest):
            seen_from = os.path.join(prod, os.path.relpath(folder, dest))
            real = os.path.realpath(os.path.join(seen_from, os.readlink(link)))
            if real == prod_real or real.startswith(prod_real + os.sep):
                continue
            if not any(real == str(p) or real.startswith(os.path.realpath(p) + os.sep)
                       for p in self.fence.prod_paths):
                continue
            os.unlink(link)
            if os.path.isfile(real):
                shutil.copy2(real, link)
            if progress:
                rel = os.path.relpath(link, dest)
                progress(f"{self.name}/{rel} pointed at {real}: the clone gets a copy of it, not the link")

    def copy_dir(self, src_dir: Path, dest_dir: Path, sync: bool = True) -> None:
        fsutil.copy_tree(src_dir, dest_dir)

    def fingerprint(self, location: str) -> str:
        """A hash over (relative path, kind, size, mtime_ns) of every entry, and the target
        of every symbolic link: one stat per entry, no file is read."""
        root = Path(location)
        h = hashlib.blake2b(digest_size=12)
        try:
            st = os.stat(root)
        except OSError:
            return "missing"
        h.update(f"{st.st_ino}".encode())
        for rel, st, target in sorted(_walk(root)):
            h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}:{st.st_size}:{st.st_mtime_ns}:{target}\n"
                     .encode("utf-8", "surrogateescape"))
        return h.hexdigest()


def _walk(root: Path):
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            it = os.scandir(folder)
        except OSError:
            continue
        with it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                rel = os.path.relpath(entry.path, root)
                target = os.readlink(entry.path) if stat.S_ISLNK(st.st_mode) else ""
                yield rel, st, target
                if stat.S_ISDIR(st.st_mode):
                    stack.append(Path(entry.path))


def _links(root: Path) -> Iterator[tuple[str, str]]:
    """(folder, path) of every symbolic link under ``root`` (links to folders not followed)."""
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            link = os.path.join(folder, name)
            if os.path.islink(link):
                yield folder, link


def _relink(dest: Path, prod: Path) -> None:
    """Absolute links into prod's folder would let a clone write prod's files: point them
    at the same place inside the copy, relatively. Other links are kept as they are."""
    prod_real = os.path.realpath(prod)
    for folder, link in _links(dest):
        target = os.readlink(link)
        if not os.path.isabs(target):
            continue
        for base in {str(prod), prod_real}:
            if target == base or target.startswith(base.rstrip(os.sep) + os.sep):
                inside = os.path.join(str(dest), os.path.relpath(target, base))
                os.unlink(link)
                os.symlink(os.path.relpath(inside, folder), link)
                break
