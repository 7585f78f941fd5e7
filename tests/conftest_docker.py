"""Fixtures for the tests that need a real Docker Engine (marked ``@pytest.mark.docker``).

Where an engine is required (``CI=true`` or ``REPRO_TEST_DOCKER=1``, for which
``scripts/test-setup.sh`` installs and starts one), an unreachable engine fails the
tests. Elsewhere they skip and say how to enable them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

PG_IMAGE = os.environ.get("REPRO_TEST_PG_IMAGE", "repro-test/postgres:15")
BUSYBOX_IMAGE = os.environ.get("REPRO_TEST_BUSYBOX_IMAGE", "repro-test/busybox:latest")
ENABLE_HINT = "REPRO_TEST_DOCKER=1 make test"


def docker_required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("REPRO_TEST_DOCKER") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: needs a real Docker Engine (skipped when none is reachable)")


def _unavailable(reason: str) -> None:
    if docker_required():
        pytest.fail(f"a Docker Engine is required here but {reason}. Run scripts/test-setup.sh first.",
                    pytrace=False)
    pytest.skip(f"no Docker Engine: {reason}. To run these tests: {ENABLE_HINT}")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A client of the engine named by DOCKER_HOST (or the local socket), with the test images."""
    try:
        import docker
        import requests
    except ImportError as exc:  # pragma: no cover - docker is a dependency
        _unavailable(f"the docker SDK is not installed ({exc})")
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        _unavailable(f"the engine did not answer ({type(exc).__name__})")
    for image in (PG_IMAGE, BUSYBOX_IMAGE):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            _unavailable(f"the test image {image} is missing (scripts/build-test-images.sh builds it)")
    yield client
    client.close()


@pytest.fixture
def docker_tag() -> str:
    """A short unique word, for names of prod containers and volumes made by one test."""
    return "t" + uuid.uuid4().hex[:8]


@pytest.fixture
def docker_cleanup(docker_client) -> Iterator[list[Any]]:
    """Objects (containers, volumes, networks) a test made as prod: removed afterwards."""
    made: list[Any] = []
    yield made
    for obj in reversed(made):
        try:
            if hasattr(obj, "remove"):
                if obj.__class__.__name__ == "Container":
                    obj.remove(force=True, v=False)
                else:
                    obj.remove()
        except Exception:  # noqa: BLE001 - best effort, the object may be gone already
            pass
