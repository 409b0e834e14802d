"""Why a scored request was flagged for review: the reason names the worker writes and the API counts.

They live in the shared bottom layer so the API's metrics read the same names without importing
the worker's rules."""

LOW_TOP_SCORE = "low_top_score"
SMALL_MARGIN = "small_margin"
FLAT_SCORES = "flat_scores"
CALIBRATION_SAMPLE = "calibration_sample"

ALL_REASONS = (LOW_TOP_SCORE, SMALL_MARGIN, FLAT_SCORES, CALIBRATION_SAMPLE)
