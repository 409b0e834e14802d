from core.settings import Settings
from workers.confidence import CALIBRATION_SAMPLE, FLAT_SCORES, LOW_TOP_SCORE, SMALL_MARGIN, ConfidenceRules

RULES = ConfidenceRules(low_top_score=0.5, low_margin=0.05, flat_spread=0.1, flat_max=0.7)


def test_confident_result_has_no_reason():
    assert RULES.reasons([0.95, 0.2, 0.1]) == []


def test_low_top_score():
    assert RULES.reasons([0.3, 0.1, 0.0]) == [LOW_TOP_SCORE]


def test_small_margin_including_exact_tie():
    assert RULES.reasons([0.9, 0.88, 0.1]) == [SMALL_MARGIN]
    assert SMALL_MARGIN in RULES.reasons([0.9, 0.9, 0.1])


def test_flat_and_low_scores():
    assert RULES.reasons([0.62, 0.6, 0.55]) == [SMALL_MARGIN, FLAT_SCORES]


def test_flat_but_high_is_not_flat_rule():
    assert FLAT_SCORES not in RULES.reasons([0.95, 0.93, 0.9])


def test_all_equal_scores_break_margin_and_flatness():
    assert RULES.reasons([0.4, 0.4, 0.4]) == [LOW_TOP_SCORE, SMALL_MARGIN, FLAT_SCORES]


def test_single_document_only_checks_the_top_score():
    assert RULES.reasons([0.99]) == []
    assert RULES.reasons([0.1]) == [LOW_TOP_SCORE]


def test_empty_scores():
    assert RULES.reasons([]) == []


def test_calibration_sample_only_for_confident_results():
    rules = ConfidenceRules(sample_rate=0.5)
    assert rules.reasons([0.95, 0.1], draw=lambda: 0.2) == [CALIBRATION_SAMPLE]
    assert rules.reasons([0.95, 0.1], draw=lambda: 0.7) == []
    assert rules.reasons([0.2, 0.1], draw=lambda: 0.0) == [LOW_TOP_SCORE]


# Thresholds and scores below are exact binary fractions, so "at the threshold" really is equal.
EXACT = ConfidenceRules(low_top_score=0.5, low_margin=0.25, flat_spread=0.5, flat_max=0.75)


def test_top_score_exactly_at_the_threshold_is_not_low():
    assert EXACT.reasons([0.5]) == []
    assert EXACT.reasons([0.4375]) == [LOW_TOP_SCORE]


def test_margin_exactly_at_the_threshold_is_not_small():
    assert EXACT.reasons([1.0, 0.75]) == []
    assert EXACT.reasons([1.0, 0.8125]) == [SMALL_MARGIN]


def test_spread_exactly_at_the_threshold_is_not_flat():
    assert EXACT.reasons([0.625, 0.25, 0.125]) == []
    assert EXACT.reasons([0.625, 0.25, 0.1875]) == [FLAT_SCORES]


def test_top_exactly_at_flat_max_is_not_flat():
    assert EXACT.reasons([0.75, 0.375, 0.3125]) == []
    assert EXACT.reasons([0.6875, 0.375, 0.3125]) == [FLAT_SCORES]


def test_a_draw_exactly_at_the_sample_rate_is_not_sampled():
    rules = ConfidenceRules(sample_rate=0.25)
    assert rules.reasons([0.95, 0.1], draw=lambda: 0.25) == []
    assert rules.reasons([0.95, 0.1], draw=lambda: 0.125) == [CALIBRATION_SAMPLE]


def test_rules_come_from_the_rerankq_settings(monkeypatch):
    for name, value in {"LOW_TOP_SCORE": "0.3", "LOW_MARGIN": "0.02", "FLAT_SPREAD": "0.08", "FLAT_MAX": "0.6",
                        "SAMPLE_RATE": "0.01"}.items():
        monkeypatch.setenv(f"RERANKQ_{name}", value)
    rules = ConfidenceRules.from_settings(Settings(_env_file=None))
    assert rules == ConfidenceRules(low_top_score=0.3, low_margin=0.02, flat_spread=0.08, flat_max=0.6,
                                    sample_rate=0.01)
    assert rules.reasons([0.35, 0.1]) == [] and rules.reasons([0.25, 0.1]) == [LOW_TOP_SCORE]


def test_default_settings_give_the_default_rules(monkeypatch):
    for name in ("LOW_TOP_SCORE", "LOW_MARGIN", "FLAT_SPREAD", "FLAT_MAX", "SAMPLE_RATE"):
        monkeypatch.delenv(f"RERANKQ_{name}", raising=False)
    assert ConfidenceRules.from_settings(Settings(_env_file=None)) == ConfidenceRules()
