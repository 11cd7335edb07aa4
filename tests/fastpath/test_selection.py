"""Which implementation ``hookgate.fastpath`` picks, checked in fresh interpreters.

Each check runs in a subprocess because the choice is made once, at import, from
HOOKGATE_FASTPATH.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

VERIFIERS = ["verify_standard", "verify_github", "verify_stripe", "verify_hmac"]
PRINT_IMPLEMENTATION = "import hookgate.fastpath as f; print(f.IMPLEMENTATION)"


def run_python(code: str, fastpath_setting: str | None) -> str:
    """Run ``code`` in a fresh interpreter and return its stripped stdout.

    HOOKGATE_FASTPATH is set to ``fastpath_setting``, or unset when that is None.
    """
    environment = dict(os.environ)
    environment.pop("HOOKGATE_FASTPATH", None)
    if fastpath_setting is not None:
        environment["HOOKGATE_FASTPATH"] = fastpath_setting
    completed = subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return completed.stdout.strip()


def test_native_used_by_default() -> None:
    assert run_python(PRINT_IMPLEMENTATION, None) == "native"


def test_python_setting_forces_pure() -> None:
    assert run_python(PRINT_IMPLEMENTATION, "python") == "python"


def test_python_setting_ignores_case() -> None:
    assert run_python(PRINT_IMPLEMENTATION, "Python") == "python"


def test_unknown_setting_keeps_native() -> None:
    assert run_python(PRINT_IMPLEMENTATION, "fast") == "native"


@pytest.mark.parametrize("name", VERIFIERS)
def test_exported_function_matches_implementation(name: str) -> None:
    code = (
        "import hookgate.fastpath as f\n"
        "from hookgate.fastpath import _native\n"
        f"print(f.{name} is _native.{name})"
    )

    assert run_python(code, None) == "True"


@pytest.mark.parametrize("name", VERIFIERS)
def test_python_setting_exports_pure_function(name: str) -> None:
    code = (
        "import hookgate.fastpath as f\n"
        "from hookgate.fastpath import _pure\n"
        f"print(f.{name} is _pure.{name})"
    )

    assert run_python(code, "python") == "True"
