"""The regex entity patterns in data/nlu/regex.yml, as RegexEntityExtractor applies them."""

import re

import pytest
import yaml

from bot.paths import ROOT


def patterns():
    data = yaml.safe_load((ROOT / "data/nlu/regex.yml").read_text(encoding="utf-8"))
    return {
        item["regex"]: [line[2:] for line in item["examples"].splitlines() if line.strip()]
        for item in data["nlu"]
    }


def extract(entity, text):
    return [m.group(0) for p in patterns()[entity] for m in re.finditer(p, text, re.IGNORECASE)]


@pytest.mark.parametrize(
    "entity, text, expected",
    [
        ("order_id", "订单号2026112012345678麻烦查下", ["2026112012345678"]),
        ("order_id", "20261120123456789", []),  # 17 digits: not an order number
        ("order_id", "13812345678", []),
        ("phone", "手机13812345678", ["13812345678"]),
        ("phone", "2026112012345678", []),
        ("phone", "12345678901", []),
        ("amount", "花了299元还坏了", ["299"]),
        ("amount", "59.9块包邮", ["59.9"]),
        ("amount", "一共1299 RMB", ["1299"]),
        ("amount", "买了3件", []),
        ("date", "11月20号签收的", ["11月20号"]),
        ("date", "2026-11-20到的", ["2026-11-20"]),
        ("date", "大前天下的单", ["大前天"]),
        ("date", "昨天到的", ["昨天"]),
    ],
)
def test_regex_entities(entity, text, expected):
    assert extract(entity, text) == expected
