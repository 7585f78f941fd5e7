"""Fixtures for the tests that need a real Docker Engine (marked ``@pytest.mark.docker``).

Where an engine is required (``CI=true`` or ``REPRO_TEST_DOCKER=1``, for which
``scripts/test-setup.sh`` installs and starts one), an unreachable engine fails the
tests. Elsewhere they skip and say how to enable them: when no engine answers at the
start of a test, and when the engine stopped answering during one (dockerd stopped
meanwhile), since that failure says nothing about the code.
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
CHECK_TIMEOUT = 10   # seconds: an engine that takes longer to answer a ping is not usable


def docker_required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("REPRO_TEST_DOCKER") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: needs a real Docker Engine (skipped when none is reachable)")


def engine_problem() -> str | None:
    """Why no engine answers (DOCKER_HOST, or the local socket), or None when one does.
    Any error counts: the SDK raises its own, ``requests``', ``OSError`` and paramiko's."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - docker is a dependency
        return f"the docker SDK is not installed ({exc})"
    try:
        client = docker.from_env(timeout=CHECK_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - whatever the transport raises, the engine is not usable
        return f"the engine did not answer ({type(exc).__name__})"
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        return f"the engine did not answer ({type(exc).__name__})"
    finally:
        client.close()
    return None


def _unavailable(reason: str) -> None:
    if docker_required():
        pytest.fail(f"a Docker Engine is required here but {reason}. Run scripts/test-setup.sh first.",
                    pytrace=False)
    pytest.skip(f"no Docker Engine: {reason}. To run these tests: {ENABLE_HINT}")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A client of the engine named by DOCKER_HOST (or the local socket), with the test images."""
    problem = engine_problem()
    if problem:
        _unavailable(problem)
    import docker

    client = docker.from_env(timeout=120)
    for image in (PG_IMAGE, BUSYBOX_IMAGE):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            _unavailable(f"the test image {image} is missing (scripts/build-test-images.sh builds it)")
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _docker_engine_answers(request: pytest.FixtureRequest) -> None:
    """Checked again before each test that uses the engine: it may have stopped since the
    session's first check."""
    if "docker_client" in request.fixturenames and request.node.get_closest_marker("docker") is not None:
        problem = engine_problem()
        if problem:
            _unavailable(problem)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A docker test that failed because the engine went away is skipped (unless an engine
    is required here): the failure is the machine's, not the code's."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed or docker_required() or item.get_closest_marker("docker") is None:
        return
    problem = engine_problem()
    if problem:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0,
                           f"Skipped: the Docker Engine stopped answering during the test: {problem}. "
                           f"To run these tests: {ENABLE_HINT}")


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
                    obj.remove(force=True, v=True)
                else:
                    obj.remove()
        except Exception:  # noqa: BLE001 - best effort, the object may be gone already
            pass


def volume_bytes(docker_client, volume: str) -> bytes:
    """Every byte of a volume's files, through the archive API of a helper that never runs."""
    c = docker_client.containers.create(BUSYBOX_IMAGE, ["true"], volumes={volume: {"bind": "/v", "mode": "ro"}},
                                        labels={"repro.test": "1"})
    try:
        stream, _stat = c.get_archive("/v")
        return b"".join(stream)
    finally:
        c.remove(force=True)


def psql_in(container, sql: str, db: str) -> str:
    """The result of ``sql`` run by psql in a PostgreSQL container, as bare text (tuples only,
    unaligned, no command tags); an error fails the test with psql's message."""
    code, out = container.exec_run(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                                   user="postgres")
    assert code == 0, out.decode()
    return out.decode().strip()
