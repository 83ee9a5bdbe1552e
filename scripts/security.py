"""`make security`: runs the attack tests (issue 13) on their own and prints, for each finding of
the security review, `blocked` (every attack test for it passed: the attack failed) or `OPEN` (an
attack test failed, or no test exists yet). Last line: `security: N blocked, M open`.

An attack test is a pytest test marked `@pytest.mark.attack("<finding id>")`. It performs the
attack against the running code and passes only when the attack is refused.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The findings of the review in issue 13, in its order.
FINDINGS: Dict[str, str] = {
    "wechat-forged-push": "WeChat pushes forged with a replayed (signature, timestamp, nonce)",
    "order-digits-guessing": "guessing the four phone digits that unlock an anonymous order",
    "identity-from-other-channel": "customer identity taken from an earlier message of another channel",
    "conversation-id-namespace": "one id space for every channel: a WeChat openid readable and writable over REST",
    "demo-token-minting": "/shop signs a real customer token for anyone",
    "uploads-unlimited": "unauthenticated, unlimited uploads kept for ever next to Redis's data",
    "message-size-unbounded": "unbounded message size: regexes on the event loop and huge events in Redis",
    "console-login-stall": "console login: Argon2 on the event loop, throttle bypassed by changing the name",
    "rasa-api-path-escape": "conversation ids unescaped in Rasa API paths",
    "order-id-url-escape": "order ids unescaped in order-system URLs",
    "ticket-queue-flood": "anyone can flood the ticket queue",
    "console-sessions": "console sessions cannot be revoked; Secure flag off; /ws does not check Origin",
    "cors-empty-origins": "CORS_ORIGINS=\"\" turns the socket.io Origin check off",
    "log-masking-gaps": "log masking misses phone, ID and e-mail shapes and exception text",
    "secrets-and-redis-password": "secret files written before chmod; var/ world-readable; Redis without a password",
    "return-photo-reference": "a return's photo evidence can be any string the client sends",
}


class Collector:
    def __init__(self) -> None:
        self.results: Dict[str, List[bool]] = defaultdict(list)
        self.unknown: List[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        marker = getattr(report, "attack_finding", None)
        if marker is None:
            return
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.results[marker].append(report.passed)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call):  # type: ignore[no-untyped-def]
        outcome = yield
        report = outcome.get_result()
        marker = item.get_closest_marker("attack")
        if marker is not None:
            finding = marker.args[0]
            if finding not in FINDINGS:
                self.unknown.append(f"{item.nodeid}: unknown finding {finding!r}")
            report.attack_finding = finding


def main() -> int:
    collector = Collector()
    code = pytest.main(["-q", "-m", "attack", "-p", "no:cacheprovider", *sys.argv[1:], str(ROOT / "tests")],
                       plugins=[collector])
    blocked = open_ = 0
    print()
    for finding, title in FINDINGS.items():
        runs = collector.results.get(finding, [])
        ok = bool(runs) and all(runs)
        blocked, open_ = blocked + ok, open_ + (not ok)
        detail = f"{sum(runs)}/{len(runs)} attack tests refused" if runs else "no attack test"
        print(f"{finding}: {'blocked' if ok else 'OPEN'} ({detail}) - {title}")
    for line in collector.unknown:
        print(line)
    print(f"security: {blocked} blocked, {open_} open")
    # pytest exit 5 (nothing collected) means no attack test exists: that is a failure too.
    return 0 if open_ == 0 and not collector.unknown and code in (0,) else 1


if __name__ == "__main__":
    sys.exit(main())
