"""Shared pytest set-up: the `live` marker for tests that call real provider APIs."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "live: calls a real provider API; skipped unless its API key is set")
