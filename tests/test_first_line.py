"""`first_line`: the one line of an error that the CLI and the HTTP answers show."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from flywheel._core.text import first_line

LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
text = st.text(st.characters(codec="utf-8") | st.sampled_from(LINE_BREAKS))


@given(text, st.integers(min_value=1, max_value=400))
def test_it_is_one_line_that_the_text_holds_and_no_longer_than_the_limit(
        message: str, limit: int) -> None:
    line = first_line(message, limit)
    assert not any(mark in line for mark in LINE_BREAKS)
    assert len(line) <= limit
    assert line == line.strip() or len(line) == limit
    assert line in message
    if message.strip():
        assert line, "a text that says something gives a line"


@given(text)
def test_without_a_limit_it_is_the_whole_first_line_that_says_something(message: str) -> None:
    said = [line.strip() for line in message.splitlines() if line.strip()]
    assert first_line(message, None) == (said[0] if said else "")


def test_an_error_that_says_nothing_is_named_by_its_type() -> None:
    assert first_line(KeyError()) == "KeyError"
    assert first_line(ValueError("\n  \n")) == "ValueError"
    assert first_line(ValueError("\n  bad value\n at 3")) == "bad value"
    assert first_line(RuntimeError("x" * 500)) == "x" * 300
