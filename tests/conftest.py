"""Shared pytest set-up: the `live` marker, and the jail backends hostile tests run against.

`backend` is parametrized over bwrap and docker. The docker engine is DOCKER_HOST when it
answers, else a dockerd this test session starts itself (vfs storage driver, no bridge, its
own socket, data root and exec root under a temp folder), the way CI runs it; the docker
cases skip, saying why, only when no engine can be reached or started.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass

import pytest

from sandbox import jail as jail_mod
from sandbox.dockerd import reachable_or_private
from sandbox.evaluate import EvaluatorSpec
from sandbox.jail import JailConfig

# The hostile fixtures assert too (checks every task makes, the tests both cbl tasks share):
# rewrite their asserts as a test module's are, so that a failure shows its values.
pytest.register_assert_rewrite("tests.fixtures.hostile", "tests.fixtures.hostile_cbl")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "live: calls a real provider API; skipped unless its API key is set")
    config.addinivalue_line(
        "markers", "slow: end-to-end, task, jail-limit and docker tests; the inner loop is "
                   "`pytest -m 'not slow'`")


# Whole modules of end-to-end runs (the CLI as a subprocess, every task's evaluator, hostile
# candidates in real jails). Tests elsewhere that wait on limits carry @pytest.mark.slow.
SLOW_MODULES = ("test_hostile", "test_solve", "test_resume", "test_llm_solve",
                "test_llm_orchestration", "test_bin_packing_task", "test_cbl", "test_cloudcast",
                "test_eplb", "test_llm_sql", "test_prism", "test_telemetry_repair",
                "test_txn_scheduling")


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.path.stem
        docker = getattr(item, "callspec", None) is not None and \
            item.callspec.params.get("backend") == "docker"
        if docker or module.startswith(SLOW_MODULES):
            item.add_marker(pytest.mark.slow)


@dataclass(frozen=True)
class Backend:
    """A jail backend for tests: its name and the settings to hand an evaluator."""

    name: str
    docker_host: str = ""

    def config(self, spec: EvaluatorSpec | None = None) -> JailConfig:
        base = spec.jail(self.name) if spec is not None else JailConfig(backend=self.name)
        return dataclasses.replace(base, docker_host=self.docker_host)

    def env(self, spec: EvaluatorSpec | None = None) -> dict[str, str]:
        """Environment for running an evaluator by hand under this backend."""
        return {**os.environ, jail_mod.ENV_VAR: self.config(spec).to_env()}


@pytest.fixture(scope="session")
def docker_host():
    with contextlib.ExitStack() as stack:
        host, why = reachable_or_private(stack)
        if not host:
            pytest.skip(f"no Docker engine for the docker sandbox tests: {why}")
        yield host


@pytest.fixture(params=["bwrap", "docker"])
def backend(request) -> Backend:
    if request.param == "docker":
        return Backend("docker", request.getfixturevalue("docker_host"))
    ok, why = jail_mod.bwrap_status()
    if not ok:
        pytest.skip(f"bwrap sandbox unavailable: {why}")
    return Backend("bwrap")
