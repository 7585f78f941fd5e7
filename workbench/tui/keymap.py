"""Every key of the screen in one table, and the user's keymap file that remaps them.

The table is data: the screen's bindings, the footer and the help are all made from it,
so a key is described once. Each binding has a stable id; a user remaps a key by naming
that id in ``keymap.toml`` in their config directory::

    # ~/.config/repro-tui/keymap.toml
    fork = "n"              # fork with n instead of f
    reset = "r,ctrl+r"      # two keys for one action

No Textual import here: the screen turns these into ``Binding`` objects.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "repro-tui"
KEYMAP_FILE = "keymap.toml"


@dataclass(frozen=True)
class Key:
    id: str              # stable: what keymap.toml names
    key: str             # Textual key name(s), comma-separated
    action: str
    description: str     # short, for the footer
    help: str            # one line, for the help screen and the footer's tooltip
    footer: bool = True


KEYS: tuple[Key, ...] = (
    Key("fork", "f", "fork", "Fork", "Fork prod (or a clone, or a snapshot) into a new clone"),
    Key("snapshot", "s", "snapshot", "Snap", "Snapshot the selected clone's data and worktree"),
    Key("reset", "r", "reset", "Reset", "Reset the clone to its latest snapshot, at once (undoable)"),
    Key("undo-reset", "z", "undo_reset", "Undo", "Undo the last reset of the selected clone"),
    Key("choose-snapshot", "R", "choose_snapshot", "Reset to…", "Choose a snapshot to reset the clone to",
        footer=False),
    Key("promote", "p", "promote", "Promote", "Commit the clone's changes on its branch (or merge them)"),
    Key("destroy", "d", "destroy", "Destroy", "Remove the selected clone (asks you to type its name)"),
    Key("start-stop", "x", "start_stop", "Start/stop", "Start or stop the selected clone's services",
        footer=False),
    Key("prod-start-stop", "x", "start_stop_prod", "Start/stop prod…",
        "Start or stop prod's services (asks you to type prod)"),
    Key("restart", "X", "restart", "Restart", "Restart the services after a config change (prod: asks first)",
        footer=False),
    Key("logs", "l", "logs", "Logs", "Show the logs of the selected environment's services", footer=False),
    Key("mail", "m", "mail", "Mail", "Show the mail the selected clone's services sent (caught, never delivered)",
        footer=False),
    Key("compare", "c", "compare", "Compare", "Compare the clone with one of its snapshots instead of prod",
        footer=False),
    Key("filter", "slash", "filter", "Filter", "Filter the diff by path or value", footer=False),
    Key("intended", "u", "toggle_intended", "Intended", "Show or hide intended changes (overrides, scrubs)",
        footer=False),
    Key("tab-config", "1", "show_tab('config')", "Config", "Show the Config tab", footer=False),
    Key("tab-services", "2", "show_tab('services')", "Services", "Show the Services tab", footer=False),
    Key("tab-data", "3", "show_tab('data')", "Data", "Show the Data tab", footer=False),
    Key("next-pane", "tab", "app.focus_next", "Next pane", "Move to the next pane (shift+tab: back)",
        footer=False),
    Key("detail", "enter", "detail", "Detail",
        "Into the diff; on a change, show it whole (path, both values)",
        footer=False),
    Key("check", "k", "check", "Check", "Run the checks on the selected environment, and on prod beside it",
        footer=False),
    Key("check-details", "K", "check_details", "Check detail",
        "Show each check's answers beside prod's, and how they differ", footer=False),
    Key("drift", "D", "drift", "Drift", "Show prod's drift: what it runs that its branch does not say",
        footer=False),
    Key("report", "W", "report", "Post-mortem", "Write the post-mortem of the selected clone and show it",
        footer=False),
    Key("cancel", "escape", "cancel", "Back",
        "Back to the environments; clear the filter; stop a diff", footer=False),
    Key("help", "question_mark", "help", "Help", "Show every key"),
    Key("quit", "q", "quit", "Quit", "Quit (services keep running)"),
)

KEY_IDS = frozenset(k.id for k in KEYS)
LINKED = {"prod-start-stop": "start-stop"}
"""A key that follows another when only the other is remapped (x for prod is x for clones)."""


def keymap_path() -> Path:
    """``user_config_dir("repro-tui")/keymap.toml`` (e.g. ~/.config/repro-tui/keymap.toml)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME)) / KEYMAP_FILE


def load_keymap(path: Path | None = None) -> tuple[dict[str, str], list[str]]:
    """The user's remapped keys (binding id -> keys) and the problems found in the file.

    A broken file never stops the screen: its problems are shown as a notification and
    the default keys apply."""
    path = path or keymap_path()
    if not path.exists():
        return {}, []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [f"{path}: cannot be read ({exc}); the default keys apply."]
    except tomllib.TOMLDecodeError as exc:
        return {}, [f"{path}: {exc}; the default keys apply."]
    if isinstance(data.get("keys"), dict):  # also accept a [keys] table
        data = {**{k: v for k, v in data.items() if k != "keys"}, **data["keys"]}
    keymap: dict[str, str] = {}
    problems: list[str] = []
    for binding_id, keys in data.items():
        if binding_id not in KEY_IDS:
            problems.append(f"{path}: no key has the id {binding_id!r} (ids: {', '.join(sorted(KEY_IDS))}).")
        elif not isinstance(keys, str) or not keys.strip():
            problems.append(f"{path}: {binding_id} must be a key name in quotes, e.g. {binding_id} = \"n\".")
        else:
            keymap[binding_id] = ",".join(k.strip() for k in keys.split(",") if k.strip())
    for follower, leader in LINKED.items():
        if leader in keymap and follower not in keymap:
            keymap[follower] = keymap[leader]
    return keymap, problems


def effective_keys(keymap: dict[str, str]) -> list[tuple[Key, str]]:
    """Each binding with the key(s) that trigger it once the keymap is applied."""
    return [(k, keymap.get(k.id, k.key)) for k in KEYS]


def key_display(keys: str) -> str:
    """How a key is written for people: ``question_mark`` -> ``?``, ``slash`` -> ``/``."""
    names = {"question_mark": "?", "slash": "/", "escape": "esc", "tab": "tab", "enter": "enter"}
    return " ".join(names.get(k, k) for k in keys.split(","))


def action_for_key(key: str, keymap: dict[str, str]) -> str | None:
    """The action a key triggers once the keymap is applied (None: no binding of ours)."""
    for k, keys in effective_keys(keymap):
        if key in keys.split(","):
            return k.action
    return None


def actions_for_key(key: str, keymap: dict[str, str]) -> list[str]:
    """Every action a key may trigger (``x``: a clone's start/stop, or prod's), first first."""
    return [k.action for k, keys in effective_keys(keymap) if key in keys.split(",")]
