"""Drift against a compose file, without an engine: prod's containers as their inspect data
says they run (the labels name the compose file) against what that file declares."""

from __future__ import annotations

from pathlib import Path

from workbench.backends.docker_settings import Mount, Settings
from workbench.diff.values import Shower
from workbench.drift import compare_settings, compose_declared

COMPOSE = """\
services:
  app:
    image: shop/app:1.4
    command: ["serve", "--port", "8080"]
    environment:
      - FEATURE=off
      - DB_PASSWORD=pw-from-compose
    ports: ["127.0.0.1:8080:8080"]
    volumes: ["./config:/etc/app:ro", "data:/var/lib/app"]
  worker:
    build: ./worker
"""


def test_a_container_drifts_from_its_compose_file_key_by_key(tmp_path: Path):
    (tmp_path / "docker-compose.yml").write_text(COMPOSE)
    labels = {"com.docker.compose.project.config_files": str(tmp_path / "docker-compose.yml")}
    live = Settings(image="shop/app:1.4", command=["serve", "--port", "8080"],
                    env={"FEATURE": "on", "DB_PASSWORD": "pw-rotated", "HOTFIX": "1"}, ports=["8080/tcp"],
                    mounts=[Mount("bind", "/etc/app", str(tmp_path / "config"), True),
                            Mount("volume", "/var/lib/app", "shop_data")])
    notes: list[str] = []
    declared = compose_declared({"app": (live, labels)}, notes)
    assert notes == [] and set(declared) == {"app", "worker"}
    want, base = declared["app"]
    changes = compare_settings("app", want, live, base, tmp_path, Shower())
    assert [(c.path, c.kind) for c in changes] == [("services.app.env.DB_PASSWORD", "changed"),
                                                   ("services.app.env.FEATURE", "changed"),
                                                   ("services.app.env.HOTFIX", "added")]
    secret = changes[0]
    assert secret.masked and "pw-" not in f"{secret.left}{secret.right}"     # a compose-prefixed volume is the same
    moved = Settings(**{**live.__dict__, "image": "shop/app:1.4-hotfix", "ports": ["9090/tcp"]})
    paths = [c.path for c in compare_settings("app", want, moved, base, tmp_path, Shower())]
    assert "services.app.image" in paths and "services.app.ports" in paths


def test_an_unreadable_compose_file_is_said_not_raised(tmp_path: Path):
    notes: list[str] = []
    labels = {"com.docker.compose.project.config_files": str(tmp_path / "gone.yml")}
    assert compose_declared({"app": (Settings(image="x"), labels)}, notes) == {}
    assert "cannot be read" in notes[0]
