"""Widgets of the workbench screen: each shows one thing and knows no engine call."""
