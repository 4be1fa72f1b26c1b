"""A page's main choices as short, readable URL values, and back:

    ?digit=class:7:3&ff=ff&cnn=cnn&point=rd-q2&offsets=0.5,-1,0

Parsing is strict: a bad or stale value (an unknown name, an index out of range, a non-number)
raises ViewValueError, and the page keeps its default. No Streamlit here (app_pages/shared_view.py
is the UI side)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from ae.errors import AEError

MAX_TEXT = 200  # a URL value longer than any view needs is not one of ours
MAX_NUMBER_DIGITS = 7  # indices into a test set of at most millions


class ViewValueError(AEError):
    """A value in the page's URL that does not describe a view this app can show."""


@dataclass(frozen=True)
class DigitChoice:
    """A test digit by its index in the set, or by class and 1-based position within the class."""
    index: int | None = None
    cls: int | None = None
    nth: int = 1


def _text(text: str) -> str:
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise ViewValueError("the value is too long")
    return text.strip()


def _count(text: str, what: str) -> int:
    # Plain decimal digits only: int() would also take "+3", " 3", "٣" or "1_000".
    if not text.isascii() or not text.isdigit() or len(text) > MAX_NUMBER_DIGITS:
        raise ViewValueError(f"the {what} is not a whole number")
    return int(text)


def format_digit(choice: DigitChoice) -> str:
    if choice.cls is not None:
        return f"class:{choice.cls}:{choice.nth}"
    return f"index:{choice.index}"


def parse_digit(text: str, set_size: int, class_sizes: Sequence[int]) -> DigitChoice:
    """"index:123" (0-based, in a set of `set_size`) or "class:7:3" (the 3rd 7; `class_sizes[c]`
    digits of class c); "class:7" is its first one."""
    kind, _, rest = _text(text).partition(":")
    if kind == "index":
        index = _count(rest, "index")
        if index >= set_size:
            raise ViewValueError(f"index {index} is past the last digit ({set_size - 1})")
        return DigitChoice(index=index)
    if kind == "class":
        cls_text, _, nth_text = rest.partition(":")
        cls = _count(cls_text, "class")
        if cls >= len(class_sizes) or class_sizes[cls] == 0:
            raise ViewValueError(f"there is no class {cls}")
        nth = _count(nth_text, "position") if nth_text else 1
        if not 1 <= nth <= class_sizes[cls]:
            raise ViewValueError(f"class {cls} has digits 1 to {class_sizes[cls]}, not {nth}")
        return DigitChoice(cls=cls, nth=nth)
    raise ViewValueError('a digit is "index:N" or "class:C:N"')


def parse_choice(text: str, options: Sequence[str], what: str) -> str:
    """One of `options`, spelled exactly (names of models or operating points)."""
    text = _text(text)
    if text not in options:
        raise ViewValueError(f"no {what} of that name is offered here")
    return text


def format_offsets(offsets: Sequence[float]) -> str:
    """Two decimals (finer than the sliders' steps), no "-0"; trailing zeros left out ("" for none)."""
    texts = [f"{round(float(o), 2) + 0.0:g}" for o in offsets]
    while texts and texts[-1] == "0":
        texts.pop()
    return ",".join(texts)


def parse_offsets(text: str, n: int, limit: float) -> list[float]:
    """Up to `n` comma-separated numbers in [-limit, limit]; missing trailing ones are 0."""
    parts = _text(text).split(",")
    if len(parts) > n:
        raise ViewValueError(f"there are {n} sliders, not {len(parts)}")
    offsets = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise ViewValueError("an offset is not a number") from None
        if not math.isfinite(value) or abs(value) > limit:
            raise ViewValueError(f"offsets run from -{limit:g} to {limit:g}")
        offsets.append(value)
    return offsets + [0.0] * (n - len(offsets))
