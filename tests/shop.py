"""The test shop's repro.yaml, defined once: the suite's workspaces are made from it.

The full shop (``shop_yaml(port)``) has one HTTP service with a secret in its settings,
a SQLite store with three scrubbed columns and a folder store; the screen's tests use a
smaller one (no folder store, no secret, one scrubbed column), so that its snapshots stay
small. Both are the same file with parts left out.
"""

from __future__ import annotations

SCRUB_RULES = {"email": "email", "phone": "phone", "name": "name"}


def shop_yaml(port: int, *, secret: bool = True, uploads: bool = True,
              scrubbed: tuple[str, ...] = ("email", "phone", "name")) -> str:
    token = " API_TOKEN: tok-live-9f8e7d," if secret else ""
    lines = [
        "name: shop",
        "backend: local",
        "prod:",
        "  branch: main",
        "services:",
        "  web:",
        "    command: python -m http.server {port} --bind 127.0.0.1",
        f"    port: {port}",
        f"    env: {{SMTP_HOST: smtp.example.com,{token} MODE: live}}",
        "    health: tcp",
        "stores:",
        "  db: {type: sqlite, path: data/shop.db}",
    ]
    if uploads:
        lines.append("  uploads: {type: files, path: data/uploads}")
    lines += ["clone:", "  overrides:", '    env: {SMTP_HOST: "127.0.0.1:1025"}', "  scrub:", "    db:"]
    lines += [f"      users.{column}: {SCRUB_RULES[column]}" for column in scrubbed]
    lines.append("config_files: [config/*.yaml]")
    return "\n".join(lines) + "\n"
