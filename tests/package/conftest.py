"""Fixtures of the package tests: the built wheel and a venv where it is installed."""
from __future__ import annotations

import pytest

from tests.package.installed import env_for, installed_venv, wheel


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory):
    return wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def user_env(built_wheel):
    """Environment of a user who installed the wheel (with its extras) and activated its venv."""
    return env_for(installed_venv(built_wheel))
