"""Which keys apply right now, and why the others do not.

One pure function decides both what the footer offers (the screen's ``check_action``)
and what a user is told when they press a key that cannot apply: the two never drift.
"""

from __future__ import annotations

from dataclasses import dataclass

CLONE_ONLY = {
    "snapshot": "snapshot",
    "reset": "reset",
    "choose_snapshot": "reset",
    "undo_reset": "undoing a reset",
    "promote": "promote",
    "destroy": "destroy",
    "compare": "comparing with a snapshot",
}
CHANGES = {"fork", "snapshot", "reset", "choose_snapshot", "undo_reset", "promote", "destroy", "start_stop",
           "start_stop_prod", "restart"}
PROD_CONTAINERS = "prod's containers are never started or stopped by repro-tui."
NEEDS_CHECKS = {"check", "check_details"}


@dataclass(frozen=True)
class Situation:
    """What the screen knows when a key is pressed."""

    selected: str | None          # the selected environment's name
    kind: str | None              # "prod" | "clone" | None (nothing listed yet)
    state: str | None = None      # its state (running, stopped, pending, ...)
    busy: str | None = None       # an operation under way ("fork b1"), if any
    can_undo_reset: bool = False
    has_services: bool = True
    backend: str = "local"
    undo_refusal: str | None = None   # why the last reset is not this user's to undo (someone else's since)
    has_checks: bool = False      # repro.yaml declares checks


def refusal(action: str, s: Situation) -> str | None:
    """Why ``action`` cannot run now, in the user's words; None when it can."""
    if action in CHANGES and s.busy:
        return f"wait: {s.busy} is under way (one change at a time)."
    if action in CLONE_ONLY:
        if s.kind != "clone":
            what = CLONE_ONLY[action]
            return f"prod is read-only: {what} is only possible on a clone. Select a clone, or fork one with f."
        if s.state == "pending" and action != "destroy":
            return f"{s.selected} has an operation that was cut off; it is recovered by the next change."
    if action == "undo_reset" and not s.can_undo_reset:
        return f"{s.selected} has no reset to undo: r resets it, then z takes that back."
    if action == "undo_reset" and s.undo_refusal:
        return s.undo_refusal
    if action in ("start_stop", "start_stop_prod", "restart"):
        if s.kind is None:
            return "no environment is selected."
        if s.kind == "prod" and s.backend != "local":
            return PROD_CONTAINERS
        if action == "start_stop" and s.kind == "prod":
            return "prod's services start and stop only after you type prod (x asks)."
        if action == "start_stop_prod" and s.kind != "prod":
            return "this key starts and stops prod's services; select prod."
        if not s.has_services:
            return f"{s.selected} has no service to start, stop or restart."
        if s.state == "pending":
            return f"{s.selected} has an operation that was cut off; it is recovered by the next change."
    if action in NEEDS_CHECKS:
        if not s.has_checks:
            return "repro.yaml declares no check: add a 'checks:' section (README, section Checks)."
        if s.kind is None:
            return "no environment is selected."
        if action == "check" and s.busy:   # an operation of its own (prod gets only GETs: not a change)
            return f"wait: {s.busy} is under way (one operation at a time)."
    if action == "mail" and s.kind != "clone":
        return "prod has no mail sink: its mail goes where prod sends it. Select a clone to read what it sent."
    if action == "logs":
        if s.kind is None:
            return "no environment is selected."
        if not s.has_services:
            return "this workspace declares no service, so there are no logs."
    return None
