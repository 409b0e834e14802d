"""Settings that would let a redelivered chunk race a live one are refused at start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.settings import Settings


def test_visibility_timeout_must_cover_three_chunk_deadlines():
    assert Settings(_env_file=None, visibility_timeout_s=270, chunk_deadline_s=90).visibility_timeout_s == 270
    with pytest.raises(ValidationError, match=r"RERANKQ_VISIBILITY_TIMEOUT_S \(269\) must be at least 3 x "
                                              r"RERANKQ_CHUNK_DEADLINE_S \(90\)"):
        Settings(_env_file=None, visibility_timeout_s=269, chunk_deadline_s=90)
