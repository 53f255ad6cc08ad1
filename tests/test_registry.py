"""Verifiers come from one entry-point group; unknown names and bad options fail clearly."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.errors import UnknownVerifier
from verifiers import load_verifier, validate_options, verifier_names


def test_builtins_and_third_party_are_registered_alike() -> None:
    names = verifier_names()
    assert {"format", "math", "langmix", "readability", "length"} <= set(names)
    assert "keyword" in names  # from tests/plugins, installed like any third-party package
    for name in names:
        assert load_verifier(name).name == name


def test_unknown_name_lists_what_is_installed() -> None:
    with pytest.raises(UnknownVerifier, match=r"astrology.*installed: .*format"):
        load_verifier("astrology")


def test_options_are_validated() -> None:
    assert validate_options("math", {"timeout_s": 2}).model_dump() == {
        "timeout_s": 2.0,
        "float_rounding": 6,
        "extract": "boxed",
    }
    with pytest.raises(ValidationError):
        validate_options("langmix", {"language": "klingon"})
    with pytest.raises(ValidationError):
        validate_options("length", {"max_tokens": 0})
