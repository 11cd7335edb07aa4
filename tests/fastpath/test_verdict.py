"""Verdict values: the enum, the pure twin's constants and the tests' constants."""

from __future__ import annotations

from types import ModuleType

import pytest

from hookgate.fastpath import Verdict

from . import signing


@pytest.mark.parametrize("member", list(Verdict), ids=lambda member: member.name)
def test_pure_constant_matches_verdict(pure: ModuleType, member: Verdict) -> None:
    assert getattr(pure, member.name) == member.value


@pytest.mark.parametrize("member", list(Verdict), ids=lambda member: member.name)
def test_test_constant_matches_verdict(member: Verdict) -> None:
    assert getattr(signing, member.name) == member.value


def test_native_malformed_matches_verdict(native: ModuleType) -> None:
    # _native keeps its constants in a C enum, so they are checked through a call.
    result = native.verify_github([b"key"], b"body", b"not a signature")

    assert result == Verdict.MALFORMED_SIGNATURE
