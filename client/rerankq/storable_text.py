"""Text every store can hold: no NUL (PostgreSQL's text refuses it) and no lone surrogates (UTF-8
cannot encode them: SQLite's driver and the tokenizers fail on them, after the job was accepted)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MESSAGE = "NUL characters and lone surrogates (\\u0000, \\ud800-\\udfff) cannot be stored"


def storable(value: str) -> str:
    if UNSTORABLE.search(value):
        raise ValueError(MESSAGE)
    return value


StorableStr = Annotated[str, AfterValidator(storable)]
