"""Alert rules: parsing, the direction rule, evaluation (no Spark)."""

from __future__ import annotations

import pytest

from deepiqa_core.audit.alerts import check_direction, evaluate, parse_rule
from deepiqa_core.errors import UsageError


def test_rules_parse_with_arguments_spaces_and_every_operator():
    rule = parse_rule(" share_below( 35 ) >= 0.05 ")
    assert (rule.metric, rule.arg, rule.op, rule.value) == ("share_below", 35.0, ">=", 0.05)
    assert parse_rule("p10<-4.5").value == -4.5
    assert [parse_rule(f"new{op}1").op for op in ("<", "<=", ">", ">=")] == ["<", "<=", ">", ">="]


@pytest.mark.parametrize(
    "text", ["p10", "p10 < forty", "p11<3", "share_below>0.1", "median(3)<2", "p10=3", ""]
)
def test_malformed_rules_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_rule(text)


def test_score_rules_need_a_direction_count_rules_do_not():
    rules = (parse_rule("error_rate>0.01"), parse_rule("new>100"))
    check_direction(rules, "unknown")  # counts mean the same either way
    with pytest.raises(UsageError, match="score-direction"):
        check_direction((*rules, parse_rule("median_drop>5")), "unknown")
    check_direction((parse_rule("median_drop>5"),), "lower_better")


def test_evaluation_fires_on_the_operator_and_never_without_a_value():
    rules = (parse_rule("p10<40"), parse_rule("p10<=40"), parse_rule("median_drop>5"))
    values = {"p10": 40.0, "median_drop": None}
    result = evaluate(rules, lambda r: values[r.metric])
    assert [r["fired"] for r in result] == [False, True, False]
    assert result[2] == {
        "rule": "median_drop>5",
        "metric": "median_drop",
        "value": None,
        "fired": False,
    }
