"""Folder stores and the copy helpers, on real folders (and a real XFS with reflinks when the
tests run as root with xfsprogs installed: a loop-mounted image, unmounted afterwards)."""

from __future__ import annotations

import gc
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from workbench import fsutil
from workbench.errors import InvalidInput, Refused
from workbench.spec import parse_spec
from workbench.stores.files import FilesStore

SPEC = """\
name: shop
stores:
  uploads: {type: files, path: data/uploads}
"""


@pytest.fixture(scope="session")
def reflink_dir(tmp_path_factory):
    """A folder on a filesystem with reflinks: $REPRO_TEST_REFLINK_DIR, or a loop-mounted
    XFS (``mkfs.xfs -m reflink=1``) when running as root. Skips otherwise."""
    given = os.environ.get("REPRO_TEST_REFLINK_DIR")
    if given:
        path = Path(given)
        if not fsutil.supports_reflink(path):
            pytest.skip(f"{given} has no reflinks")
        work = path / f"repro-test-{os.getpid()}"
        work.mkdir()
        yield work
        shutil.rmtree(work, ignore_errors=True)
        return
    if os.geteuid() != 0 or not shutil.which("mkfs.xfs") or not shutil.which("mount"):
        pytest.skip("no reflink filesystem: run as root with xfsprogs, or set REPRO_TEST_REFLINK_DIR")
    base = tmp_path_factory.mktemp("xfs")
    image, mount = base / "xfs.img", base / "mnt"
    mount.mkdir()
    with open(image, "wb") as f:
        f.truncate(512 << 20)
    made = subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"mkfs.xfs failed: {made.stderr.strip()}")
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mount)], capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot loop-mount an image here: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        gc.collect()  # connections kept alive by a failed test's traceback hold files open
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)  # detached now, freed when idle
        image.unlink(missing_ok=True)


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def make_prod(root: Path) -> Path:
    """prod's uploads: nested folders, modes, links of every kind, an empty folder, a pipe."""
    git(root, "init", "-q")
    (root / ".gitignore").write_text("data/\n.repro/\n")
    up = root / "data" / "uploads"
    (up / "img" / "2024").mkdir(parents=True)
    (up / "empty").mkdir()
    (up / "img" / "2024" / "a.jpg").write_bytes(os.urandom(70_000))
    (up / "img" / "b.txt").write_text("hello")
    script = up / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o750)
    private = up / "private.key"
    private.write_text("not really")
    private.chmod(0o600)
    os.utime(up / "img" / "b.txt", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    os.symlink("img/b.txt", up / "latest")                       # relative, inside
    os.symlink(str(up / "img" / "2024" / "a.jpg"), up / "abs")    # absolute, into prod
    elsewhere = root.parent / "elsewhere" / "elsewhere.txt"   # outside the workspace: not prod's
    elsewhere.parent.mkdir(exist_ok=True)
    elsewhere.write_text("not prod's")
    elsewhere.chmod(0o644)
    os.symlink(str(elsewhere), up / "outside")                   # absolute, elsewhere
    os.symlink("nowhere", up / "dangling")
    os.mkfifo(up / "pipe")
    return up


def make_store(root: Path, repro: Path | None = None) -> FilesStore:
    spec = parse_spec(SPEC, root)
    return FilesStore(spec, spec.stores["uploads"], repro or root / ".repro")


def tree(path: Path) -> dict[str, tuple]:
    """What a copy must keep: kind, mode, content or link target, mtime of files."""
    out = {}
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            p = Path(folder) / name
            st = p.lstat()
            rel = str(p.relative_to(path))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            elif p.is_file():
                out[rel] = ("file", stat.S_IMODE(st.st_mode), p.read_bytes(), st.st_mtime_ns)
    return out


def test_fork_copies_folders_modes_times_and_links(tmp_path):
    prod = make_prod(tmp_path)
    before = tree(prod)
    store = make_store(tmp_path)
    store.check([])
    store.fork("b1", None, None, [])
    copy = Path(store.location("b1"))
    assert copy == tmp_path / ".repro" / "data" / "b1" / "uploads"
    got = tree(copy)
    assert tree(prod) == before  # prod untouched
    assert "pipe" not in got  # a pipe is not copied (opening it would block)
    for rel, what in before.items():
        if rel in ("pipe", "abs"):
            continue
        assert got[rel] == what, rel
    # an absolute link into prod now points inside the copy, so the clone cannot write prod
    assert got["abs"] == ("link", "img/2024/a.jpg")
    assert (copy / "abs").read_bytes() == (prod / "img" / "2024" / "a.jpg").read_bytes()
    assert os.readlink(copy / "outside") == str(tmp_path.parent / "elsewhere" / "elsewhere.txt")
    (copy / "img" / "b.txt").write_text("changed in the clone")
    assert (prod / "img" / "b.txt").read_text() == "hello"


def test_snapshot_reset_undo_fork_destroy(tmp_path):
    make_prod(tmp_path)
    store = make_store(tmp_path)
    store.fork("b1", None, None, [])
    live = Path(store.location("b1"))
    (live / "new.txt").write_text("one")
    store.snapshot("b1", "s1")
    snap = Path(store.snapshot_location("b1", "s1"))
    assert not stat.S_IMODE((snap / "new.txt").stat().st_mode) & 0o222  # snapshot files are read-only
    # not a link's target
    assert stat.S_IMODE((tmp_path.parent / "elsewhere" / "elsewhere.txt").stat().st_mode) == 0o644
    (live / "new.txt").write_text("two")
    (live / "img" / "b.txt").unlink()
    store.make_ready("b1", "s1", "id-1")
    assert store.ready_for("b1") == "id-1"
    ready_inode = store.ready_dir("b1").stat().st_ino
    assert store.reset("b1", "s1", "id-1") is True
    assert store.data_dir("b1").stat().st_ino == ready_inode  # a rename, not a copy
    assert (live / "new.txt").read_text() == "one" and (live / "img" / "b.txt").exists()
    assert (live / "new.txt").stat().st_mode & stat.S_IWUSR  # the live copy is writable again
    store.undo_reset("b1")
    assert (live / "new.txt").read_text() == "two" and not (live / "img" / "b.txt").exists()
    assert store.reset("b1", "s1", "id-1") is False  # no ready copy any more: copied, then swapped
    assert (live / "new.txt").read_text() == "one"
    store.fork("b2", "b1", "s1", [])
    assert (Path(store.location("b2")) / "new.txt").read_text() == "one"
    store.fork("b3", "b1", None, [])
    assert tree(Path(store.location("b3"))) == tree(live)
    store.destroy("b1")
    assert not store.data_dir("b1").exists() and not store.snapshot_dir("b1", "s1").exists()
    assert not store.undo_dir("b1").exists()
    assert (Path(store.location("b2")) / "new.txt").read_text() == "one"


def test_fingerprint_moves_with_every_change(tmp_path):
    make_prod(tmp_path)
    store = make_store(tmp_path)
    store.fork("b1", None, None, [])
    loc = store.location("b1")
    fp = store.fingerprint(loc)
    assert store.fingerprint(loc) == fp
    f = Path(loc) / "img" / "b.txt"
    st = f.stat()
    f.write_text("HELLO")  # same size...
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # ...and a clock that barely moved
    fp2 = store.fingerprint(loc)
    assert fp2 != fp
    (Path(loc) / "img" / "c.txt").write_text("")
    fp3 = store.fingerprint(loc)
    assert fp3 != fp2
    os.rename(Path(loc) / "img" / "c.txt", Path(loc) / "img" / "d.txt")
    assert store.fingerprint(loc) != fp3
    os.unlink(Path(loc) / "latest")
    os.symlink("img/d.txt", Path(loc) / "latest")
    assert store.fingerprint(loc) not in (fp, fp2, fp3)
    assert store.fingerprint(str(tmp_path / "absent")) == "missing"


def test_refusals(tmp_path):
    git(tmp_path, "init", "-q")
    store = make_store(tmp_path)
    with pytest.raises(Refused, match="does not exist") as err:
        store.check([])
    assert "mkdir -p" in err.value.hint
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "uploads").write_text("a file")
    with pytest.raises(Refused, match="not a folder"):
        store.check([])
    (tmp_path / "data" / "uploads").unlink()
    (tmp_path / "data" / "uploads").mkdir()
    (tmp_path / "data" / "uploads" / "x.txt").write_text("x")
    store.check([])
    git(tmp_path, "add", "data/uploads/x.txt")
    with pytest.raises(Refused, match="git tracks") as err:
        store.fork("b1", None, None, [])
    assert "git rm -r --cached data/uploads" in err.value.hint
    from workbench.spec import ScrubRule
    with pytest.raises(InvalidInput, match="databases only"):
        store.check([ScrubRule("uploads", "t", "c", "email")])


def test_copy_helpers_without_reflink(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 << 20))
    assert fsutil.reflink_or_copy(src, tmp_path / "dst.bin") == fsutil.supports_reflink(tmp_path)
    assert (tmp_path / "dst.bin").read_bytes() == src.read_bytes()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    fsutil.reflink_or_copy(empty, tmp_path / "empty2")
    assert (tmp_path / "empty2").read_bytes() == b""


def test_reflinks_on_a_filesystem_that_has_them(reflink_dir, tmp_path):
    assert fsutil.supports_reflink(reflink_dir)
    prod = make_prod(tmp_path)
    work = reflink_dir / "files"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    shutil.copytree(prod, work / "prod", symlinks=True, ignore=shutil.ignore_patterns("pipe"))
    assert fsutil.copy_tree(work / "prod", work / "copy") == 4  # every regular file shared, none copied
    got = tree(work / "copy")
    want = tree(work / "prod")
    assert got == want
    (work / "copy" / "img" / "b.txt").write_text("changed")  # copy on write: the source keeps its bytes
    assert (work / "prod" / "img" / "b.txt").read_text() == "hello"
    # the store's own operations on that filesystem
    (work / "ws").mkdir()
    shutil.copytree(prod, work / "ws" / "data" / "uploads", symlinks=True, ignore=shutil.ignore_patterns("pipe"))
    git(work / "ws", "init", "-q")
    store = make_store(work / "ws")
    store.fork("b1", None, None, [])
    store.snapshot("b1", "s1")
    assert tree(Path(store.snapshot_location("b1", "s1")))["img/b.txt"][2] == b"hello"
    store.destroy("b1")
