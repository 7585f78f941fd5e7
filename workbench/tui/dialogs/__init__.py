"""Dialogs: each asks for what one action needs and dismisses with a typed result (or None)."""
