"""repro-tui: fork prod into an isolated clone, diff it, reset it, promote the fix."""

__version__ = "0.1.0"
