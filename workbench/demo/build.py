"""Build the demo workspace: a new git repository holding a small shop, its settings, a
``repro.yaml`` and (untracked) production data with a bug waiting in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from workbench.demo.data import generate, write_invoices
from workbench.demo.story import DEMO_BUG, DEMO_PORT
from workbench.errors import InvalidInput, Refused

CUSTOMERS = 500
MIN_ORDERS = 100
MAX_ORDERS = 1_000_000
INVOICED_ORDERS = [1, 2, 3, 5, 8, 13]

# template file -> where it goes in the demo repository (dot files are stored without the dot,
# so that packaging tools never mistake them for the project's own)
TEMPLATE_FILES = {
    "app.py": "app.py",
    "config/app.yaml": "config/app.yaml",
    "env": ".env",
    "gitignore": ".gitignore",
    "repro.yaml": "repro.yaml",
    "README.md": "README.md",
}
COMMIT_MESSAGE = "Northwind order service: app, settings and repro.yaml"
DEMO_AUTHOR = ("repro-tui demo", "demo@repro-tui.invalid")

Progress = Callable[[str], None]


def _enclosing_repository(path: Path) -> Path | None:
    """The git repository (work tree or bare) that ``path`` would land in, if any."""
    for folder in [path, *path.parents]:
        if (folder / ".git").exists():
            return folder
        if folder.is_dir() and (folder / "HEAD").is_file() and (folder / "objects").is_dir():
            return folder  # a bare repository or a .git folder itself
    return None


def _check_target(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise Refused(f"cannot build the demo at {path}: it is a file.", "Choose a new folder: repro-tui demo PATH")
    if path.is_dir() and any(path.iterdir()):
        raise Refused(f"cannot build the demo in {path}: the folder is not empty.",
                      "Choose a new or empty folder: repro-tui demo PATH")
    repo = _enclosing_repository(path)
    if repo is not None:
        raise Refused(f"cannot build the demo in {path}: it is inside the git repository {repo}.",
                      "The demo is a repository of its own: choose a folder outside any repository.")


def _git(cwd: Path, *args: str) -> str:
    # GIT_* variables (set when running under a git hook, say) would point git elsewhere
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1")
    name, email = DEMO_AUTHOR
    cmd = ["git", "-c", f"user.name={name}", "-c", f"user.email={email}", "-c", "commit.gpgsign=false",
           "-c", "core.autocrlf=false", "-c", "core.hooksPath=/dev/null", *args]
    try:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise Refused("cannot build the demo: git is not installed.", "Install git, then run it again.") from None
    if done.returncode != 0:
        raise Refused(f"cannot build the demo: git {args[0]} failed: {done.stderr.strip()[:300]}",
                      "Check that git works here (git --version), then run it again.")
    return done.stdout


def _copy_template(root: Path, port: int) -> None:
    template = resources.files("workbench.demo") / "template"
    for source, target in TEMPLATE_FILES.items():
        dest = root / target
        dest.parent.mkdir(parents=True, exist_ok=True)
        data = (template / source).read_bytes()
        if port != DEMO_PORT:  # another demo's prod holds the usual port: this one takes another
            data = data.replace(str(DEMO_PORT).encode(), str(port).encode())
        dest.write_bytes(data)


def build_demo(path: Path, *, orders: int = 20000, progress: Progress | None = None,
               port: int = DEMO_PORT) -> Path:
    """Create the demo workspace at ``path`` (a new or empty folder outside any git repository).

    The repository gets one commit on ``main``: app.py, config/app.yaml, .env, repro.yaml,
    .gitignore and a README. ``data/`` (git-ignored) gets the SQLite database and the uploads.
    The same arguments always give the same data. Returns the workspace's root.
    """
    if isinstance(orders, bool) or not isinstance(orders, int) or not MIN_ORDERS <= orders <= MAX_ORDERS:
        raise InvalidInput(f"the demo needs between {MIN_ORDERS} and {MAX_ORDERS} orders, not {orders!r}.")
    root = Path(path).expanduser().absolute()
    _check_target(root)
    created = not root.exists()
    step = progress or (lambda _msg: None)
    try:
        root.mkdir(parents=True, exist_ok=True)
        step("creating the git repository")
        _git(root, "init", "-q")
        _git(root, "symbolic-ref", "HEAD", "refs/heads/main")
        _copy_template(root, port)
        step(f"generating the shop's data ({orders} orders)")
        started = time.perf_counter()
        data = root / "data"
        (data / "uploads").mkdir(parents=True)
        planted = [i for i in DEMO_BUG["order_ids"] if i <= orders]
        paid = [DEMO_BUG["refund_order_id"]]
        generate(data / "shop.db", orders=orders, customers=CUSTOMERS, planted=planted, paid=paid)
        write_invoices(data / "shop.db", data / "uploads" / "invoices", INVOICED_ORDERS)
        step(f"data ready in {time.perf_counter() - started:.2f} s")
        step("committing on main")
        _git(root, "add", "--all")
        _git(root, "commit", "-q", "--no-verify", "-m", COMMIT_MESSAGE)
    except BaseException:
        if created:
            shutil.rmtree(root, ignore_errors=True)
        else:
            for child in root.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise
    return root
