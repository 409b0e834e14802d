"""Low-confidence rules: which scored requests a person should review, and why.

The rules are core/confidence_rules.py (the API's model comparison applies them too); this module
keeps the workers' import path.
"""

from __future__ import annotations

from core.confidence_rules import (CALIBRATION_SAMPLE, FLAT_SCORES, LOW_TOP_SCORE, SMALL_MARGIN,
                                   ConfidenceRules)

__all__ = ["CALIBRATION_SAMPLE", "FLAT_SCORES", "LOW_TOP_SCORE", "SMALL_MARGIN", "ConfidenceRules"]
