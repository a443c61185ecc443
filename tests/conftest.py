"""Fixtures shared by every tier, each kept in its own plugin module."""

pytest_plugins = [
    "tests.fixtures.paths",
    "tests.fixtures.envtest",
    "tests.fixtures.simulator",
    "tests.fixtures.operator",
    "tests.fixtures.node",
    "tests.fixtures.prometheus",
    "tests.fixtures.scheduling",
]
