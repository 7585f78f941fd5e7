"""A clone's edge process (``workbench.edge``) as the backends start and stop it: beside the
clone's services, with a pid file and a log under ``.repro/run/ENV/`` like theirs.

Its settings are kept in ``_edge.json`` there: the mail sink's address (its port stays the
same from one start to the next while it is free, so the services' settings do too), the
forwarders and the egress proxy. ``values()`` gives the templates the backends expand in
services' settings: ``{mail.host}``, ``{mail.port}`` and ``{egress.proxy}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from workbench.backends.local import free_port, port_open, running_pid, spawn, stop_process
from workbench.errors import BackendError

NAME = "_edge"          # a service's name starts with a letter: no service has this one
PORTS = "_ports"        # Docker: the forwarders of published ports, started once the containers run
START_TIMEOUT = 15.0


def mail_folder(run_dir: Path) -> Path:
    return run_dir / "mail"


def _config_file(run_dir: Path, name: str = NAME) -> Path:
    return run_dir / f"{name}.json"


def read_config(run_dir: Path, name: str = NAME) -> dict[str, Any]:
    try:
        data = json.loads(_config_file(run_dir, name).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def values(run_dir: Path) -> dict[str, str]:
    """Template values for a clone's settings, once its edge has an address."""
    cfg = read_config(run_dir)
    out = {}
    if cfg.get("mail"):
        host, port = cfg["mail"]["listen"]
        out.update({"mail.host": str(host), "mail.port": str(port)})
    if cfg.get("proxy"):
        host, port = cfg["proxy"]["listen"]
        out["egress.proxy"] = f"{host}:{port}"
    return out


def expand(text: str, vals: dict[str, str]) -> str:
    for key, value in vals.items():
        text = text.replace("{" + key + "}", value)
    return text


def running(run_dir: Path, name: str = NAME) -> bool:
    return running_pid(run_dir, name) is not None


def _port(host: str, previous: Any, avoid: set[int], ours: bool = False) -> int:
    """The port used last time when it is still free (or still held by this very edge,
    ``ours``: a running sink keeps its port, and is not restarted for a new one), else a new one."""
    if isinstance(previous, list) and len(previous) == 2 and previous[0] == host:
        port = int(previous[1])
        if port not in avoid and (ours or not port_open(port, host)):
            return port
    return free_port(avoid)


def plan(run_dir: Path, host: str, avoid: set[int], forwards: list[dict[str, Any]] | None = None,
         allow: list[str] | None = None) -> dict[str, Any]:
    """The edge's settings for a start: the sink (and the proxy) on ``host``."""
    old = read_config(run_dir)
    ours = running(run_dir)
    used = set(avoid) | {f["listen"][1] for f in forwards or []}
    mail_port = _port(host, (old.get("mail") or {}).get("listen"), used, ours)
    cfg: dict[str, Any] = {"mail": {"listen": [host, mail_port], "folder": str(mail_folder(run_dir))},
                           "forwards": forwards or []}
    if allow:
        cfg["proxy"] = {"listen": [host, _port(host, (old.get("proxy") or {}).get("listen"), used | {mail_port},
                                               ours)],
                        "allow": list(allow)}
    return cfg


def write_plan(run_dir: Path, cfg: dict[str, Any], name: str = NAME) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = _config_file(run_dir, name).with_suffix(".tmp")
    tmp.write_text(json.dumps(cfg, indent=1))
    os.replace(tmp, _config_file(run_dir, name))


# workbench.edge, found where this very package is (whatever PYTHONPATH says)
_EDGE = "import sys; sys.path.insert(0, sys.argv[1]); from workbench.edge import main; sys.exit(main(sys.argv[2:]))"
_HOME = str(Path(__file__).resolve().parents[2])


def start(run_dir: Path, env: str, cfg: dict[str, Any], name: str = NAME) -> None:
    """(Re)start an edge process with ``cfg`` and wait until it listens on every address it
    lists. One already running with the same settings is left as it is."""
    if running(run_dir, name) and read_config(run_dir, name) == cfg:
        return
    stop(run_dir, name)
    write_plan(run_dir, cfg, name)
    mail_folder(run_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    what = "the mail sink" if name == NAME else "the port forwarders"
    proc = spawn(run_dir, name, [sys.executable, "-c", _EDGE, _HOME, str(_config_file(run_dir, name))],
                 dict(os.environ), run_dir, None, f"{what} of {env}")
    listens = [cfg["mail"]["listen"]] if cfg.get("mail") else []
    listens += [f["listen"] for f in cfg.get("forwards", [])]
    listens += [cfg["proxy"]["listen"]] if cfg.get("proxy") else []
    deadline = time.monotonic() + START_TIMEOUT
    for host, port in listens:
        while not port_open(port, host):
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(run_dir, name)
                raise BackendError(f"{what} of {env} did not start on {host}:{port}. Its last lines:\n"
                                   + tail(run_dir, name), f"Its log: {run_dir / (name + '.log')}")
            time.sleep(0.02)


def stop(run_dir: Path, name: str = NAME) -> None:
    stop_process(run_dir, name, grace=3.0)


def stop_all(run_dir: Path) -> None:
    for name in (PORTS, NAME):
        stop(run_dir, name)


def tail(run_dir: Path, name: str = NAME, lines: int = 5) -> str:
    try:
        text = (run_dir / f"{name}.log").read_text(errors="replace")
    except OSError:
        return "  (no log)"
    return "\n".join("  " + line for line in text.splitlines()[-lines:])
