import logging

import pytest

from bot.privacy import install_log_masking, mask_personal_data


@pytest.mark.parametrize(
    "text, expected",
    [
        # Mobile numbers, every way shoppers and systems write them.
        ("手机13812345678请回电", "手机138****5678请回电"),
        ("+8613812345678", "+86138****5678"),
        ("+86 138 1234 5678", "+86 138 **** 5678"),
        ("+86-138-1234-5678", "+86-138-****-5678"),
        ("(+86)138-1234-5678", "(+86)138-****-5678"),
        ("008613812345678", "0086138****5678"),
        ("8613812345678", "86138****5678"),
        ("138-1234-5678", "138-****-5678"),
        ("138 1234 5678", "138 **** 5678"),
        ("1 3 8 1 2 3 4 5 6 7 8", "1 3 8 * * * * 5 6 7 8"),
        ("１３８１２３４５６７８", "１３８****５６７８"),
        ("１３８－１２３４－５６７８", "１３８－****－５６７８"),
        ("＋８６　１３８　１２３４　５６７８", "＋８６　１３８　****　５６７８"),
        ("电话：13812345678。", "电话：138****5678。"),
        # Landline numbers with an area code.
        ("0571-88886666", "0571-****6666"),
        ("(010)62345678", "(010)****5678"),
        ("0571 8888 6666", "0571 **** 6666"),
        ("座机057188886666", "座机0571****6666"),
        # ID-card numbers: 18 characters and the old 15 digits.
        ("身份证110101199003074518", "身份证110101********4518"),
        ("身份证11010119900307451X", "身份证110101********451X"),
        ("身份证11010119900307451x", "身份证110101********451x"),
        ("110101 19900307 4518", "110101 ******** 4518"),
        ("110101-19900307-4518", "110101-********-4518"),
        ("１１０１０１１９９００３０７４５１８", "１１０１０１********４５１８"),
        ("身份证110101900307451", "身份证110101******451"),
        ("110101 900307 451", "110101 ****** 451"),
        # E-mail addresses.
        ("邮箱zhang.san@example.com", "邮箱z***@example.com"),
        ("13812345678@163.com", "1***@163.com"),
        ("li+shop@mail.example.com.cn", "l***@mail.example.com.cn"),
        ("ｚｈａｎｇ＠ｑｑ．ｃｏｍ", "ｚ***＠ｑｑ．ｃｏｍ"),
        # JSON logs write non-ASCII as \uXXXX escapes.
        ('{"text": "\\uff11\\uff13\\uff18\\uff11\\uff12\\uff13\\uff14\\uff15\\uff16\\uff17\\uff18"}',
         '{"text": "１３８****５６７８"}'),
        ('{"text": "13812345678"}', '{"text": "138****5678"}'),
        # Street addresses.
        ("寄到杭州市西湖区文三路88号3栋2单元501室", "寄到杭州市西湖区***"),
        # Not personal data: stays readable.
        ("订单号2026112012345678", "订单号2026112012345678"),
        ("订单号2026112012345678 手机13812345678", "订单号2026112012345678 手机138****5678"),
        ("order_id=2024061812345678", "order_id=2024061812345678"),
        ("退款299元", "退款299元"),
        ("2024-06-18 12:00:01", "2024-06-18 12:00:01"),
        ("ts=1718700000.123456 took 1718700000123", "ts=1718700000.123456 took 1718700000123"),
        ("id 3f2b1c4e-0d9a-4e6b-8f1a-012345678901", "id 3f2b1c4e-0d9a-4e6b-8f1a-012345678901"),
        ("物流单号 773123456789012", "物流单号 773123456789012"),  # 15 digits, no birth date
        ("快递SF1234567890123", "快递SF1234567890123"),
        ("rasa 3.6.21 on port 5005", "rasa 3.6.21 on port 5005"),
        ('\\\\u4e2d', '\\\\u4e2d'),
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


def test_logged_exceptions_are_masked(caplog):
    install_log_masking()
    with caplog.at_level(logging.INFO):
        try:
            raise ValueError("no order for 138-1234-5678 / zhang.san@example.com")
        except ValueError:
            logging.getLogger("bot.test").exception("lookup failed")
    assert "1234" not in caplog.text and "zhang.san" not in caplog.text
    assert "138-****-5678" in caplog.text and "z***@example.com" in caplog.text
