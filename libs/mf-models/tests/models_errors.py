"""Test helper: the one-line error every bad input must get."""

from __future__ import annotations


def one_line(err) -> str:
    """The message of a `pytest.raises` result, checked to be one line with exit code 2."""
    message = str(err.value)
    assert "\n" not in message and err.value.exit_code == 2
    return message
