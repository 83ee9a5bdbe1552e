"""The return form's condition questions are asked positively, so 「是的」 always means 完好.

Older shoppers tripped over 「吊牌…没有摘掉…吗？」: with a double negative, 「是的」 and 「不是」 both
read as 「没摘」 (issue 16, 适老化). A question may explain what counts as 完好 with 未/没有, but the
question itself asks whether something is still in place.
"""

import re

import pytest

from bot.orders.eligibility import rules_text

NEGATED_QUESTION = re.compile(r"(没有|没|未|不)[^，。？；]*(吗|吧)？")


@pytest.mark.parametrize("key,question", sorted(rules_text()["condition_questions"].items()))
def test_condition_questions_ask_positively(key, question):
    assert "吗？" in question
    asked = question.split("？")[0] + "？"  # the question itself, before any explanation
    assert not NEGATED_QUESTION.search(asked), f"{key}: {asked}"
