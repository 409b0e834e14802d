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
