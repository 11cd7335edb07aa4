"""Fixtures that run every fastpath test on both verifiers.

A missing extension fails the run instead of skipping it: the pure twin alone would
pass every test while the gateway ships without the compiled verifier.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

import pytest

Verify = Callable[..., int]

IMPLEMENTATIONS = {
    "native": "hookgate.fastpath._native",
    "python": "hookgate.fastpath._pure",
}


def _import_implementation(name: str) -> ModuleType:
    try:
        return importlib.import_module(IMPLEMENTATIONS[name])
    except ImportError as exc:
        pytest.fail(
            f"cannot import {IMPLEMENTATIONS[name]}: {exc}. Build the extension with"
            " `pip install -e '.[dev]'` (needs Cython, a C compiler and libssl-dev)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def native() -> ModuleType:
    """The compiled verifier, hookgate.fastpath._native."""
    return _import_implementation("native")


@pytest.fixture(scope="session")
def pure() -> ModuleType:
    """The pure-Python verifier, hookgate.fastpath._pure."""
    return _import_implementation("python")


def _function(request: pytest.FixtureRequest, name: str) -> Verify:
    module = _import_implementation(request.param)
    function: Verify = getattr(module, name)
    return function


@pytest.fixture(params=sorted(IMPLEMENTATIONS), scope="session")
def verify(request: pytest.FixtureRequest) -> Verify:
    """verify_standard of each implementation in turn."""
    return _function(request, "verify_standard")


@pytest.fixture(params=sorted(IMPLEMENTATIONS), scope="session")
def verify_github(request: pytest.FixtureRequest) -> Verify:
    """verify_github of each implementation in turn."""
    return _function(request, "verify_github")


@pytest.fixture(params=sorted(IMPLEMENTATIONS), scope="session")
def verify_stripe(request: pytest.FixtureRequest) -> Verify:
    """verify_stripe of each implementation in turn."""
    return _function(request, "verify_stripe")


@pytest.fixture(params=sorted(IMPLEMENTATIONS), scope="session")
def verify_hmac(request: pytest.FixtureRequest) -> Verify:
    """verify_hmac of each implementation in turn."""
    return _function(request, "verify_hmac")
