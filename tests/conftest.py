"""Test configuration: the hub is off, and every family of tiny model is a fixture."""

from __future__ import annotations

import os

import pytest

from tests.helpers import FAMILIES

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a test must never reach for the hub


@pytest.fixture(params=FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    return request.param
