import pytest

from bot.identity import phone_last4_matches, sign_customer_token, verify_customer_token

SECRET = "s3cret-for-tests"


def test_a_signed_token_verifies_until_it_expires():
    token = sign_customer_token("c1001", SECRET, ttl_s=60, now=1000)
    assert verify_customer_token(token, SECRET, now=1059) == "c1001"
    assert verify_customer_token(token, SECRET, now=1061) is None


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t.replace("c1001", "c1002"),  # someone else's id
        lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),  # tampered signature
        lambda t: t.rsplit(".", 2)[0] + ".99999999999." + t.rsplit(".", 1)[1],  # extended expiry
        lambda t: "v1.c1001.99999999999.",  # no signature
        lambda t: "c1001",  # a bare id
        lambda t: None,
        lambda t: {"customer_id": "c1001"},
    ],
)
def test_forged_tokens_are_rejected(forge):
    token = sign_customer_token("c1001", SECRET, now=1000)
    assert verify_customer_token(forge(token), SECRET, now=1001) is None


def test_a_token_signed_with_another_secret_is_rejected():
    assert verify_customer_token(sign_customer_token("c1001", "other", now=1000), SECRET, now=1001) is None


def test_customer_ids_with_dots_cannot_be_signed():
    with pytest.raises(ValueError):
        sign_customer_token("a.b", SECRET)


@pytest.mark.parametrize("claimed, ok", [("1234", True), ("4321", False), ("234", False), (1234, False), ("12a4", False)])
def test_phone_last4(claimed, ok):
    assert phone_last4_matches("13800001234", claimed) is ok
