"""Codes: CSPRNG digits, readable when asked, hashed with a key bound to the launch."""

from __future__ import annotations

import uuid

import pytest

from flask_sdkauth.codes import code_matches, generate_code, hash_code


@pytest.mark.parametrize("length", [4, 6, 8])
def test_codes_have_the_requested_length_in_digits(length):
    codes = {generate_code(length) for _ in range(200)}
    assert all(len(code) == length and code.isdigit() for code in codes)
    assert len(codes) > 150  # random, not a constant


def test_codes_keep_leading_zeros_possible():
    assert any(generate_code(4).startswith("0") for _ in range(2000))


def test_beautified_codes_have_no_runs_of_three():
    for _ in range(500):
        code = generate_code(6, beautify=True)
        assert len(code) == 6
        assert not any(code[i] == code[i + 1] == code[i + 2] for i in range(4))


def test_hash_is_bound_to_key_session_and_generation():
    request_id = uuid.uuid4()
    stored = hash_code(b"key", request_id, 1, "123456")
    assert len(stored) == 64 and "123456" not in stored
    assert code_matches(b"key", request_id, 1, "123456", stored)
    assert not code_matches(b"key", request_id, 1, "123457", stored)
    assert not code_matches(b"other", request_id, 1, "123456", stored)
    assert not code_matches(b"key", uuid.uuid4(), 1, "123456", stored)
    assert not code_matches(b"key", request_id, 2, "123456", stored)
