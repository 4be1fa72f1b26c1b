"""The URL values of a shared view: each choice survives format -> parse, and anything else is
refused with ViewValueError (never another exception)."""
import pytest

from ae.errors import AEError
from ae.view_state import (DigitChoice, ViewValueError, format_digit, format_offsets, parse_choice,
                           parse_digit, parse_offsets)

CLASS_SIZES = [5, 4, 0, 3, 1, 1, 1, 1, 1, 1]  # class 2 has no digits in this set
SET_SIZE = sum(CLASS_SIZES)


@pytest.mark.parametrize("choice", [DigitChoice(index=0), DigitChoice(index=SET_SIZE - 1),
                                    DigitChoice(cls=0, nth=5), DigitChoice(cls=3, nth=1)])
def test_digit_choices_round_trip(choice):
    assert parse_digit(format_digit(choice), SET_SIZE, CLASS_SIZES) == choice


def test_a_class_without_position_is_its_first_digit():
    assert parse_digit("class:1", SET_SIZE, CLASS_SIZES) == DigitChoice(cls=1, nth=1)


@pytest.mark.parametrize("text", [
    "", "7", "index:", f"index:{SET_SIZE}", "index:-1", "index:+3", "index:1.5", "index:٣", "index:1_0",
    "index:" + "9" * 50, "class:10:1", "class:2:1", "class:0:0", "class:0:6", "class:x:1", "class:0:1:2",
    "klass:1:1", "x" * 500,
])
def test_bad_digits_are_refused(text):
    with pytest.raises(ViewValueError):
        parse_digit(text, SET_SIZE, CLASS_SIZES)


def test_choices_must_be_offered_exactly():
    assert parse_choice("rd-q2", ["rd-q1", "rd-q2"], "point") == "rd-q2"
    for text in ["rd-q3", "RD-Q2", "rd-q", "x" * 1000]:
        with pytest.raises(ViewValueError):
            parse_choice(text, ["rd-q1", "rd-q2"], "point")


def test_offsets_round_trip_and_pad():
    offsets = [0.5, -1.0, 0.0, 2.25, -3.0, 3.0]
    text = format_offsets(offsets)
    assert text == "0.5,-1,0,2.25,-3,3"
    assert parse_offsets(text, 6, 3.0) == offsets
    assert parse_offsets("0.5,-1", 4, 3.0) == [0.5, -1.0, 0.0, 0.0]
    assert format_offsets([0.5, 0.0, -0.001]) == "0.5"  # the trailing zeros are implied
    assert format_offsets([0.0, 0.0]) == ""


@pytest.mark.parametrize("text", ["", "a", "1,,2", "nan", "inf", "-inf", "3.5", "-4", "1e9", "0,0,0,0,0,0,0",
                                  ",".join(["0"] * 200)])
def test_bad_offsets_are_refused(text):
    with pytest.raises(ViewValueError):
        parse_offsets(text, 6, 3.0)


def test_the_error_is_one_the_app_shows():
    assert issubclass(ViewValueError, AEError)
