"""Low-confidence rules: which scored requests a person should review, and why.

Each rule is a pure function of one request's scores so it costs nothing next to a forward pass.
They live in the bottom layer because the workers flag with them and the API's model comparison
(GET /v1/models/compare) applies them to stored scores; workers/confidence.py re-exports them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from core.confidence_reasons import CALIBRATION_SAMPLE, FLAT_SCORES, LOW_TOP_SCORE, SMALL_MARGIN
from core.settings import Settings

__all__ = ["CALIBRATION_SAMPLE", "FLAT_SCORES", "LOW_TOP_SCORE", "SMALL_MARGIN", "ConfidenceRules"]


@dataclass(frozen=True)
class ConfidenceRules:
    low_top_score: float = 0.5
    low_margin: float = 0.05
    flat_spread: float = 0.05
    flat_max: float = 0.7
    sample_rate: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "ConfidenceRules":
        return cls(settings.low_top_score, settings.low_margin, settings.flat_spread, settings.flat_max,
                   settings.sample_rate)

    def reasons(self, scores: Sequence[float], draw: Optional[Callable[[], float]] = None) -> list[str]:
        """Every rule the scores break, in a fixed order; a confident result may still be sampled."""
        if not scores:
            return []
        ranked = sorted(scores, reverse=True)
        top = ranked[0]
        found = []
        if top < self.low_top_score:
            found.append(LOW_TOP_SCORE)
        if len(ranked) > 1 and top - ranked[1] < self.low_margin:
            found.append(SMALL_MARGIN)
        if len(ranked) > 1 and top - ranked[-1] < self.flat_spread and top < self.flat_max:
            found.append(FLAT_SCORES)
        if not found and self.sample_rate > 0 and (draw or random.random)() < self.sample_rate:
            found.append(CALIBRATION_SAMPLE)
        return found
