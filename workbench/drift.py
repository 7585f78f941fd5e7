"""Prod's drift: what prod runs that its branch, its compose file or repro.yaml does not say.

During a fire people hot-fix prod by hand. Two kinds of drift are found, both only read:

* **files**: prod's checkout against its branch (changed, added and deleted files) under
  the paths the workspace cares about — ``config_files``, ``repro.yaml`` and the files its
  services name (a local command's script and config, a container's bind mounts), each
  config file key by key, secrets masked. Git runs without optional locks, so not even
  prod's index is refreshed.
* **containers** (Docker): each prod container as it runs against what ``repro.yaml`` (or
  the compose file its labels name) declares: image, command, entrypoint, environment,
  published ports and mounts.

``carry`` gives a new clone prod's live files and, for the services ``repro.yaml``
declares, the live image, command and environment (never a secret value), so that the hot
fix can be reviewed in the clone and promoted as a commit.
"""

from __future__ import annotations

import io
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.diff.model import Change
from workbench.diff.values import Shower
from workbench.errors import Refused

if TYPE_CHECKING:
    from workbench.backends.docker_settings import Mount, Settings
    from workbench.vcs import Repo
    from workbench.workspace import Workspace

FILE_KINDS = {"M": "changed", "A": "added", "D": "removed", "T": "changed"}
CARRIED_KEYS = ("image", "command", "env")
COMPOSE_FILES = "com.docker.compose.project.config_files"


@dataclass
class Drift:
    branch: str
    files: list[tuple[str, str]] = field(default_factory=list)   # (added | changed | removed, path)
    changes: list[Change] = field(default_factory=list)          # config keys (config), container settings (services)
    notes: list[str] = field(default_factory=list)
    watched: list[str] = field(default_factory=list)             # the paths compared

    @property
    def containers(self) -> list[Change]:
        return [c for c in self.changes if c.section == "services"]

    @property
    def count(self) -> int:
        """Files that drifted and container settings that drifted."""
        return len(self.files) + len(self.containers)

    def summary(self) -> str:
        """``1 file, 2 container settings`` (or ``none``)."""
        parts = []
        if self.files:
            parts.append(f"{len(self.files)} file{'s' if len(self.files) != 1 else ''}")
        if self.containers:
            n = len(self.containers)
            parts.append(f"{n} container setting{'s' if n != 1 else ''}")
        return ", ".join(parts) or "none"

    def as_dict(self) -> dict[str, Any]:
        return {"branch": self.branch, "count": self.count,
                "files": [{"path": p, "kind": k} for k, p in self.files],
                "config": [c.as_dict() for c in self.changes if c.section == "config"],
                "containers": [c.as_dict() for c in self.containers], "notes": list(self.notes),
                "watched": list(self.watched)}

    def lines(self) -> list[str]:
        """The drift as readable lines (secrets masked already)."""
        from workbench.diff.render import change_line

        if not self.count:
            return [f"no drift: prod runs what {self.branch} and its declaration say.", *self.notes]
        out = [f"prod's drift: {self.summary()} that {self.branch} does not say."]
        if self.files:
            out.append(f"Files (prod's checkout against {self.branch}):")
            for kind, path in self.files:
                out.append(f"  {'+' if kind == 'added' else '-' if kind == 'removed' else '~'} {path}  ({kind})")
                for c in self.changes:
                    if c.section == "config" and c.path.split(":", 1)[0] == path and (":" in c.path or c.lines):
                        out.append("  " + change_line(c))
                        out += [f"        {line}" for line in (c.lines or [])[2:40]]
        if self.containers:
            out.append("Containers (running against their declaration):")
            out += ["  " + change_line(c) for c in self.containers]
        return out + self.notes


def prod_drift(ws: Workspace) -> Drift:
    """Prod's drift as it is now (read only)."""
    shower = Shower(ws.secrets)
    branch = ws.spec.prod_branch
    drift = Drift(branch=branch, watched=watched_paths(ws))
    repo = ws.repo()
    if repo.rev(branch) is None:
        raise Refused(f"prod's branch {branch!r} does not exist (or has no commit), so there is nothing to "
                      "compare prod's files with.", "Commit on it first, or set prod.branch in repro.yaml.")
    found = repo.drifted(branch, drift.watched)
    drift.files = sorted(((FILE_KINDS.get(status, "changed"), path) for path, status in found.items()),
                         key=lambda item: item[1])
    if drift.files:
        drift.changes += _file_changes(ws, repo, branch, drift.files, shower)
    if ws.spec.backend == "docker":
        changes, notes = _container_changes(ws, shower)
        drift.changes += changes
        drift.notes += notes
    return drift


# --- files --------------------------------------------------------------------------------------

def watched_paths(ws: Workspace) -> list[str]:
    """Git pathspecs of what the workspace cares about: config files, repro.yaml, and the
    files its services name."""
    specs = [f":(glob){p.lstrip('/').removeprefix('./')}" for p in ws.spec.config_files]
    specs.append("repro.yaml")
    root = ws.root.resolve()
    for svc in ws.spec.services.values():
        try:
            words = svc.command if isinstance(svc.command, list) else shlex.split(svc.command or "")
        except ValueError:   # unbalanced quotes: the backend says so when it starts it
            words = []
        folder = root / (svc.cwd or ".")
        for word in words:
            word = str(word).split("=", 1)[-1]
            if "{" in word or word.startswith("-") or not word:
                continue
            specs += _inside(root, folder / word)
        for volume in svc.volumes:
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                specs += _inside(root, root / source)
    return list(dict.fromkeys(specs))


def _inside(root: Path, path: Path) -> list[str]:
    try:
        real = path.resolve()
        rel = real.relative_to(root)
    except (OSError, ValueError, RuntimeError):
        return []
    return [rel.as_posix()] if rel.parts and real.exists() and rel.parts[0] != ".repro" else []


def _file_changes(ws: Workspace, repo: Repo, branch: str, files: list[tuple[str, str]],
                  shower: Shower) -> list[Change]:
    """Each drifted file against the branch's copy: key by key for config files, as lines otherwise."""
    with tempfile.TemporaryDirectory(prefix="repro-drift-") as tmp:
        repo.write_files(branch, [p for kind, p in files if kind != "added"], Path(tmp))
        return file_changes([p for _, p in files], Path(tmp), ws.root, shower)


def file_changes(paths: list[str], left: Path, right: Path, shower: Shower) -> list[Change]:
    """These files of two folders compared: key by key for config files, as lines otherwise."""
    from workbench.diff.config import ConfigDiff

    return list(ConfigDiff([glob_escape(p) for p in paths], left, right, shower).changes())


def glob_escape(path: str) -> str:
    """A path as a glob pattern that matches only itself."""
    return "".join(f"[{ch}]" if ch in "*?[]" else ch for ch in path)


# --- containers ----------------------------------------------------------------------------------

def _container_changes(ws: Workspace, shower: Shower) -> tuple[list[Change], list[str]]:
    from workbench.backends.docker_settings import settings_from_spec

    running = ws.backend.running_settings()
    declared: dict[str, tuple[Settings, Path]] = {n: (settings_from_spec(s), ws.root)
                                                  for n, s in ws.spec.services.items()}
    notes: list[str] = []
    adopted = [n for n in running if n not in declared]
    if adopted:
        found = compose_declared(running, notes)
        for name in adopted:
            if name in found:
                declared[name] = found[name]
            else:
                notes.append(f"note: {name}'s container is compared with nothing: no compose file or repro.yaml "
                             "declares it.")
    changes: list[Change] = []
    for name in sorted(declared):
        if name not in running:
            notes.append(f"note: prod runs no container of {name}.")
            continue
        want, base = declared[name]
        changes += compare_settings(name, want, running[name][0], base, ws.root, shower)
    return changes, notes


def compose_declared(running: dict[str, tuple[Settings, dict[str, str]]],
                     notes: list[str]) -> dict[str, tuple[Settings, Path]]:
    """The services of the compose file that prod's containers' labels name."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from workbench.backends.docker_settings import settings_from_spec
    from workbench.spec import ServiceSpec

    files = {labels.get(COMPOSE_FILES, "").split(",")[0] for _s, labels in running.values()} - {""}
    out: dict[str, tuple[Settings, Path]] = {}
    for name in sorted(files):
        path = Path(name)
        try:
            data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, YAMLError) as exc:
            notes.append(f"note: the compose file {path.name} cannot be read ({type(exc).__name__}): its "
                         "containers are compared with nothing.")
            continue
        services = (data or {}).get("services") if isinstance(data, dict) else None
        for svc, node in (services or {}).items():
            if not isinstance(node, dict):
                continue
            env = node.get("environment") or {}
            if isinstance(env, list):
                env = dict(str(e).split("=", 1) for e in env if "=" in str(e))
            spec = ServiceSpec(name=str(svc), image=str(node.get("image") or "(built)"), command=node.get("command"),
                               entrypoint=node.get("entrypoint"), env={str(k): "" if v is None else str(v)
                                                                       for k, v in env.items()},
                               ports=[str(p) for p in node.get("ports") or [] if isinstance(p, (str, int))],
                               volumes=[str(v) for v in node.get("volumes") or [] if isinstance(v, str)])
            out[str(svc)] = (settings_from_spec(spec), path.parent)
    return out


def compare_settings(name: str, want: Settings, have: Settings, base: Path, root: Path,
                     shower: Shower) -> list[Change]:
    """A container's settings as it runs against its declaration (left: declared, right: live).
    What the declaration leaves to the image (command, entrypoint) is not compared."""
    out: list[Change] = []

    def add(key: str, left: Any, right: Any, secret_name: str = "") -> None:
        kind = "added" if left is None else "removed" if right is None else "changed"
        (shown_l, m1), (shown_r, m2) = shower.tree(left, secret_name), shower.tree(right, secret_name)
        out.append(Change("services", f"services.{name}.{key}", kind, left=shown_l, right=shown_r,
                          masked=m1 or m2))

    if want.image != "(built)" and _image(want.image) != _image(have.image):
        add("image", want.image, have.image)
    for key in ("command", "entrypoint"):
        if getattr(want, key) is not None and getattr(want, key) != getattr(have, key):
            add(key, getattr(want, key), getattr(have, key))
    for k in sorted(set(want.env) | set(have.env)):
        if want.env.get(k) != have.env.get(k):
            add(f"env.{k}", want.env.get(k), have.env.get(k), secret_name=k)
    if set(want.ports) != set(have.ports):
        add("ports", sorted(want.ports), sorted(have.ports))
    wanted = {m.target: _mount_text(m, base, root) for m in want.mounts}
    running = {m.target: _mount_text(m, base, root) for m in have.mounts}
    for target in sorted(set(wanted) | set(running)):
        a, b = wanted.get(target), running.get(target)
        if a != b and not (a and b and _same_volume(a, b)):
            add(f"mounts.{target}", a, b)
    return out


def _image(image: str) -> str:
    return image if ":" in image.rsplit("/", 1)[-1] or "@" in image else f"{image}:latest"


def _mount_text(m: Mount, base: Path, root: Path) -> str:
    ro = ":ro" if m.read_only else ""
    if m.kind != "bind":
        return f"{m.kind}:{m.source}{ro}" if m.kind == "volume" else m.kind
    source = Path(m.source).expanduser()
    source = (source if source.is_absolute() else base / source).resolve()
    try:
        return f"bind:./{source.relative_to(root.resolve()).as_posix()}{ro}"
    except ValueError:
        return f"bind:{source}{ro}"


def _same_volume(declared: str, running: str) -> bool:
    """A named volume as compose names it (``project_data`` for ``data``), or anonymous."""
    if not (declared.startswith("volume:") and running.startswith("volume:")):
        return False
    want, have = declared[7:], running[7:]
    return want.split(":")[0] in ("", "ro") or have == want or have.endswith("_" + want)


# --- into a clone ----------------------------------------------------------------------------------

def carry(ws: Workspace, env: str, drift: Drift) -> tuple[list[str], list[str]]:
    """Give the new clone ``env`` prod's live files and the live settings of the containers
    its repro.yaml declares. Returns (what was carried, what was not and why)."""
    fence = ws.fence
    worktree = fence.worktree(env)
    carried: list[str] = []
    for kind, path in drift.files:
        dest = worktree / path
        if kind == "removed":
            fence.unlink(env, dest)
        else:
            fence.mkdir(env, dest.parent)
            target = fence.path(env, dest, "write")
            if target.is_symlink():
                target.unlink()
            shutil.copyfile(ws.root / path, target)
            shutil.copymode(ws.root / path, target)
        carried.append(path)
    settings = [c for c in drift.containers if c.path.split(".")[1] in ws.spec.services]
    skipped = [f"{c.path} is adopted from compose, so every clone runs it as prod does"
               for c in drift.containers if c.path.split(".")[1] not in ws.spec.services]
    if settings:
        done, not_done = _carry_settings(ws, env, settings)
        carried += done
        skipped += not_done
    return carried, skipped


def _carry_settings(ws: Workspace, env: str, changes: list[Change]) -> tuple[list[str], list[str]]:
    """The live image, command and environment written into the clone's repro.yaml (round
    trip, comments kept); a secret value is never written, a port or mount never changed."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.scalarstring import SingleQuotedScalarString

    live = {name: settings for name, (settings, _labels) in ws.backend.running_settings().items()}
    path = ws.fence.worktree(env) / "repro.yaml"
    yaml = YAML()
    data = yaml.load(path.read_text(encoding="utf-8"))
    done: list[str] = []
    skipped: list[str] = []
    for c in changes:
        parts = c.path.split(".", 3)
        svc, key = parts[1], parts[2]
        node, have = data["services"][svc], live.get(svc)
        if key not in CARRIED_KEYS or have is None:
            skipped.append(f"{c.path} is not carried (change it in the clone's repro.yaml by hand)")
            continue
        if key != "env":
            node[key] = getattr(have, key)
            done.append(c.path)
            continue
        name = parts[3]
        if c.masked or ws.secrets.is_secret_key(name):
            skipped.append(f"{c.path} is a secret, never written into a file (set it by hand)")
            continue
        env_key = "environment" if "environment" in node else "env"
        current = node.get(env_key)
        if isinstance(current, list):
            current = CommentedMap(str(e).split("=", 1) for e in current if "=" in str(e))
            node[env_key] = current
        if current is None:
            current = node[env_key] = CommentedMap()
        if name in have.env:   # quoted: on, off, 1 and the like stay text for every YAML reader
            current[name] = SingleQuotedScalarString(have.env[name])
        else:
            current.pop(name, None)
        done.append(c.path)
    if done:
        out = io.StringIO()
        yaml.dump(data, out)
        ws.fence.write_text(env, path, out.getvalue())
    return done, skipped


def carried_message(carried: list[str], skipped: list[str]) -> str:
    """What a fork with prod's drift took along (for the journal and the command line)."""
    text = f"with prod's drift: {', '.join(carried)}" if carried else "prod had no drift to carry"
    return text + "".join(f"; {s}" for s in skipped)
