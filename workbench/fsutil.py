"""Copying files as fast as the filesystem allows.

On filesystems with reflinks (XFS with ``reflink=1``, Btrfs, bcachefs, ZFS 2.2+...) a copy
is a clone of the file's extents: O(1) in the file's size, and the two files share blocks
until one of them is written. Elsewhere the copy stays in the kernel
(``copy_file_range``, then ``sendfile``) instead of going through Python buffers.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

FICLONE = 0x40049409  # _IOW(0x94, 9, int), from linux/fs.h

# errors that mean "this filesystem (or this pair of files) cannot be cloned"
_NO_REFLINK = {errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.ENOSYS,
               errno.EPERM, errno.EBADF}
_reflink_by_device: dict[int, bool] = {}


def supports_reflink(directory: str | os.PathLike[str]) -> bool:
    """Whether files in ``directory`` can be cloned; probed once per device with two
    temporary files (the only reliable test: mount options do not say)."""
    dev = os.stat(directory).st_dev
    known = _reflink_by_device.get(dev)
    if known is not None:
        return known
    ok = False
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".reflink-probe-") as src, \
                tempfile.NamedTemporaryFile(dir=directory, prefix=".reflink-probe-") as dst:
            src.write(b"\0" * 4096)
            src.flush()
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
            ok = True
    except OSError:
        ok = False
    _reflink_by_device[dev] = ok
    return ok


def reflink(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Clone ``src`` into a new file ``dst``; raises OSError when the filesystem cannot."""
    with open(src, "rb") as fsrc:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            fcntl.ioctl(fd, FICLONE, fsrc.fileno())
        except OSError:
            os.close(fd)
            os.unlink(dst)
            raise
        os.close(fd)


def reflink_or_copy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> bool:
    """Copy the bytes of ``src`` to ``dst`` (created or truncated). Returns True when the
    copy was a reflink. Mode bits and times are not copied (see :func:`copy_tree`)."""
    dst_dir = os.path.dirname(os.path.abspath(dst))
    if supports_reflink(dst_dir):
        try:
            reflink(src, dst)
            return True
        except OSError as exc:
            if exc.errno not in _NO_REFLINK:
                raise
            # across devices, or a file the filesystem refuses to share: copy it
    _kernel_copy(src, dst)
    return False


def _kernel_copy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    with open(src, "rb") as fsrc, open(dst, "wb") as fdst:
        size = os.fstat(fsrc.fileno()).st_size
        copied = 0
        try:
            while copied < size:
                n = os.copy_file_range(fsrc.fileno(), fdst.fileno(), size - copied)
                if n == 0:
                    break
                copied += n
        except OSError as exc:
            if exc.errno not in _NO_REFLINK:
                raise
        # a file still growing, or copy_file_range refused: finish in user space
        fsrc.seek(copied)
        fdst.seek(copied)
        shutil.copyfileobj(fsrc, fdst, 1 << 20)


def copy_tree(src_dir: str | os.PathLike[str], dst_dir: str | os.PathLike[str]) -> int:
    """Copy a folder like ``cp -a --reflink=auto``: regular files (reflinked when possible),
    folders and symbolic links (as links, not followed), with mode bits and modification
    times. Sockets, pipes and devices are skipped: opening a pipe would block. Returns
    the number of files reflinked. ``dst_dir`` may exist (it is filled)."""
    src, dst = Path(src_dir), Path(dst_dir)
    dst.mkdir(parents=True, exist_ok=True)
    reflinked = 0
    dirs: list[tuple[Path, os.stat_result]] = [(dst, os.stat(src))]
    stack = [(src, dst)]
    while stack:
        s_dir, d_dir = stack.pop()
        with os.scandir(s_dir) as it:
            for entry in it:
                try:
                    reflinked += _copy_entry(entry, d_dir / entry.name, dirs, stack)
                except FileNotFoundError:
                    continue  # removed while we copied (a live folder): as if copied a moment later
    # folders last: their times change while they are filled, and a read-only one could not be
    for d, st in reversed(dirs):
        os.chmod(d, stat.S_IMODE(st.st_mode))
        os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))
    return reflinked


def _copy_entry(entry: os.DirEntry, d: Path, dirs: list[tuple[Path, os.stat_result]],
                stack: list[tuple[Path, Path]]) -> int:
    """Copy one entry of a folder; a sub-folder is created and queued. Returns 1 if reflinked."""
    s = Path(entry.path)
    st = entry.stat(follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(s), d)
        try:
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        except (NotImplementedError, OSError):
            pass
    elif stat.S_ISDIR(st.st_mode):
        d.mkdir()
        dirs.append((d, st))
        stack.append((s, d))
    elif stat.S_ISREG(st.st_mode):
        shared = reflink_or_copy(s, d)
        os.chmod(d, stat.S_IMODE(st.st_mode))
        os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))
        return int(shared)
    return 0


def fsync_file(path: str | os.PathLike[str]) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tracked_by_git(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> list[str]:
    """The files under ``path`` (a file or a folder) that the git repository at ``root``
    tracks; empty when none, when ``path`` lies outside the repository, or when ``root`` is
    not a repository at all."""
    try:
        rel = os.path.relpath(os.path.realpath(path), os.path.realpath(root))
    except ValueError:
        return []
    if rel == ".." or rel.startswith(".." + os.sep):
        return []
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--", rel],
                             capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if out.returncode != 0:
        return []
    return [p for p in out.stdout.decode("utf-8", "surrogateescape").split("\0") if p]
