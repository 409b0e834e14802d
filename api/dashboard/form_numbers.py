"""Numbers typed into dashboard forms. `str.isdigit` accepts '²' and '٣', which `int` then refuses
or reads as another number, and `int` refuses more than 4300 digits: both were 500s. Only ASCII
digits, at most nine of them, count as a number here; anything else is the reviewer's typo."""

from __future__ import annotations

import re
from typing import Optional

_NUMBER = re.compile(r"[0-9]{1,9}")


def form_int(value: object) -> Optional[int]:
    """The number in a form field, or None when it is not a plain non-negative number."""
    text = str(value if value is not None else "").strip()
    return int(text) if _NUMBER.fullmatch(text) else None
