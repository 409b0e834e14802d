"""Fault injection for resilience tests: wraps the real backend, changes nothing when unset.

The integration tests prove recovery with these (a poison document, a hanging step, an
out-of-memory batch, a slow model) on the real worker process, instead of faking the worker.
"""

from __future__ import annotations

import logging
import time
from typing import Optional, Sequence

from core.settings import Settings
from models.base import Encoded, Pair, ScoringBackend

log = logging.getLogger(__name__)
POISON = "fault_poison"
HANG = "fault_hang"


class InjectedModelError(RuntimeError):
    """Raised for a batch holding a poison document."""


class InjectedOutOfMemory(RuntimeError):
    """Stands in for torch.cuda.OutOfMemoryError on machines without a GPU."""


class FaultInjectingBackend:
    def __init__(self, backend: ScoringBackend, settings: Settings) -> None:
        self._backend = backend
        self._settings = settings
        self.info = backend.info

    def default_instruction(self) -> Optional[str]:
        return self._backend.default_instruction()

    @property
    def shares_prefix(self) -> bool:
        return getattr(self._backend, "shares_prefix", False)

    def split_documents(self, pairs: Sequence[Pair]) -> tuple[list[Pair], list[int]]:
        from models.long_documents import split_documents

        return split_documents(self._backend, pairs)

    def encode(self, pairs: Sequence[Pair]) -> list[Encoded]:
        encoded = self._backend.encode(pairs)
        poison, hang = self._settings.fault_poison_marker, self._settings.fault_hang_marker
        for pair, item in zip(pairs, encoded):
            item.extra[POISON] = bool(poison) and poison in pair.document
            item.extra[HANG] = bool(hang) and hang in pair.document
        return encoded

    def score_encoded(self, batch: Sequence[Encoded]) -> list[float]:
        settings = self._settings
        if settings.fault_step_delay_s:
            time.sleep(settings.fault_step_delay_s)
        if settings.fault_oom_above_pairs and len(batch) > settings.fault_oom_above_pairs:
            raise InjectedOutOfMemory(f"injected out of memory for a batch of {len(batch)} pairs")
        if any(item.extra.get(HANG) for item in batch):
            log.warning("injected hang")
            while True:
                time.sleep(3600)
        if any(item.extra.get(POISON) for item in batch):
            raise InjectedModelError("injected model error (poison document)")
        return self._backend.score_encoded(batch)

    def score(self, pairs: Sequence[Pair]) -> list[float]:
        return self.score_encoded(self.encode(pairs))


def with_faults(backend: ScoringBackend, settings: Settings) -> ScoringBackend:
    active = (settings.fault_step_delay_s or settings.fault_poison_marker or settings.fault_hang_marker
              or settings.fault_oom_above_pairs)
    if not active:
        return backend
    log.warning("FAULT INJECTION ACTIVE: delay=%s poison=%r hang=%r oom_above=%s", settings.fault_step_delay_s,
                settings.fault_poison_marker, settings.fault_hang_marker, settings.fault_oom_above_pairs)
    return FaultInjectingBackend(backend, settings)
