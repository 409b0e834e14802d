"""How much of a job one dashboard page shows, and whether it reloads itself.

A job of 100 queries x 1,000 documents rendered whole was 26 MB of HTML reloaded every 2 s.
A page now holds whole requests up to about PAGE_DOCUMENTS documents (at least one request, at
most MAX_REQUESTS), with links to the others, and only small jobs reload while running; a big
one shows its progress and a reload link instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

PAGE_DOCUMENTS = 1000
MAX_REQUESTS = 50
REFRESH_MAX_PAIRS = 1000  # above this a running job's page does not reload itself every 2 s


@dataclass(frozen=True)
class JobPage:
    offset: int
    size: int
    total: int

    @property
    def previous_offset(self) -> Optional[int]:
        return max(0, self.offset - self.size) if self.offset > 0 else None

    @property
    def next_offset(self) -> Optional[int]:
        return self.offset + self.size if self.offset + self.size < self.total else None

    @property
    def last(self) -> int:
        """Index of the last request shown."""
        return min(self.offset + self.size, self.total) - 1


def job_page(n_requests: int, n_pairs: int, offset: int) -> JobPage:
    """The page of requests starting at `offset` (clamped into the job)."""
    per_request = math.ceil(n_pairs / n_requests) if n_requests else 1
    size = max(1, min(MAX_REQUESTS, PAGE_DOCUMENTS // max(1, per_request)))
    offset = max(0, min(offset, max(0, n_requests - 1)))
    return JobPage(offset, size, n_requests)


def reloads(n_pairs: int, finished: bool) -> bool:
    return not finished and n_pairs <= REFRESH_MAX_PAIRS
