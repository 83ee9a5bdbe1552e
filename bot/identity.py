"""Who the shopper is, in a way the page cannot forge. Pure functions, no Rasa imports.

Web chat: the store's backend signs a short-lived token for the logged-in customer and the page
passes it as message metadata `{"customer_token": "..."}`. The token is
`v1.<customer_id>.<expires unix time>.<hex HMAC-SHA256 of the first three parts>` with the
secret STORE_SIGNING_SECRET, which only the store's backend and 小保 know.
WeChat: the channel (server side) supplies the openid; the binding openid -> customer comes from
bot.identity_bindings (Redis, or the shop's identity service over HTTP). Anonymous shoppers prove an order is theirs with the last four digits
of the order's phone number.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Optional

TOKEN_VERSION = "v1"
DEFAULT_TTL_S = 3600


def _signature(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def sign_customer_token(customer_id: str, secret: str, ttl_s: int = DEFAULT_TTL_S, now: Optional[float] = None) -> str:
    if "." in customer_id or not customer_id:
        raise ValueError("customer id must be non-empty and contain no '.'")
    expires = int((now if now is not None else time.time()) + ttl_s)
    payload = f"{TOKEN_VERSION}.{customer_id}.{expires}"
    return f"{payload}.{_signature(secret, payload)}"


def verify_customer_token(token: object, secret: str, now: Optional[float] = None) -> Optional[str]:
    """The customer id of a valid, unexpired token; None for anything else."""
    if not isinstance(token, str) or not secret:
        return None
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != TOKEN_VERSION or not parts[2].isdigit():
        return None
    payload = ".".join(parts[:3])
    if not hmac.compare_digest(_signature(secret, payload), parts[3]):
        return None
    if int(parts[2]) < (now if now is not None else time.time()):
        return None
    return parts[1]


def phone_last4_matches(phone: str, claimed: object) -> bool:
    return isinstance(claimed, str) and len(claimed) == 4 and claimed.isdigit() and phone[-4:] == claimed


def main(argv: list) -> int:
    """`python -m bot.identity CUSTOMER_ID`: print a token signed with the local secret (demo)."""
    import os
    import sys

    from bot.settings import Settings

    if len(argv) != 1:
        print(main.__doc__, file=sys.stderr)
        return 2
    settings = Settings.from_env()
    secret = settings.store_signing_secret or (settings.var_dir / "store_signing_secret").read_text().strip()
    print(sign_customer_token(argv[0], secret, ttl_s=int(os.environ.get("TOKEN_TTL_S", DEFAULT_TTL_S))))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
