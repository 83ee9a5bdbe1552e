import logging

import pytest

from bot.privacy import install_log_masking, mask_personal_data


@pytest.mark.parametrize(
    "text, expected",
    [
        ("手机13812345678请回电", "手机138****5678请回电"),
        ("身份证110101199003074518", "身份证110101********4518"),
        ("身份证11010119900307451X", "身份证110101********451X"),
        ("寄到杭州市西湖区文三路88号3栋2单元501室", "寄到杭州市西湖区***"),
        ("订单号2026112012345678", "订单号2026112012345678"),  # order numbers are not personal data
        ("退款299元", "退款299元"),
    ],
)
def test_masking(text, expected):
    assert mask_personal_data(text) == expected


def test_every_logger_is_masked_once_installed(caplog):
    install_log_masking()
    with caplog.at_level(logging.INFO):
        logging.getLogger("rasa.core.processor").info("user said %s", "我的电话13812345678，住文三路88号")
    assert "13812345678" not in caplog.text and "138****5678" in caplog.text
    assert "文三路88号" not in caplog.text
