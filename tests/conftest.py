"""Shared test configuration: the development-cluster fixtures."""

pytest_plugins = ["devcluster.pytest_plugin", "devcluster.simnode.pytest_fixtures"]
