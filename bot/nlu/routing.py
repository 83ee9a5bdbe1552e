"""Routing that survives real text: when to overrule the intent classifier. Pure, no Rasa imports.

DIET reads a long, greeting-prefixed story with an amount in it and often settles on the
wrong, easy intent: 「您好，…199买的…能退差价吗」 becomes `greet` or `inform`. The knowledge
base is independent evidence: when the message asks something and retrieval finds an entry
that explains it well, the message is a question for the knowledge base, whatever DIET said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from bot.nlu.question import asks_something, ends_with_question, strip_greeting

# Intents that never answer a question: a message that asks something is not one of these.
CHATTY = frozenset({"greet", "goodbye", "thanks", "affirm", "inform", "stop", "nlu_fallback"})
# Intents the router may move a question to when the knowledge base does not know it.
ACTIONABLE = ("ask_rights", "ask_policy", "order_status", "request_return", "request_human", "complain", "out_of_scope")
# Retrieval confidence (BM25 share of the question's words) that makes the KB the route.
KB_ROUTE_MIN = 0.45
# ... and, stricter, to overrule a classifier that chose out_of_scope or complain.
KB_OVERRULE_MIN = 0.6
# A message whose intent is CHATTY is a question when, after its greeting, it asks something
# this long, or the knowledge base explains it well.
MIN_QUESTION_CHARS = 8
# ... and after thanks or a goodbye, only a real question of this length (「谢谢，那退款几天到？」 is
# short and often just a closing pleasantry).
LONG_QUESTION_CHARS = 15
# Out of scope is overruled on a near-certain knowledge-base match, or when the classifier is
# unsure and its runner-up is a store matter.
KB_OUT_OF_SCOPE_MIN = 0.8
UNSURE_OUT_OF_SCOPE = 0.85
RUNNER_UP_MIN = 0.15
STORE_MATTERS = ("request_return", "order_status", "ask_rights", "ask_policy")
# An explicit wish to complain or to reach a person keeps `complain` even when a question follows.
_WANTS_COMPLAINT = re.compile(
    r"我要投诉|我想投诉|我要举报|帮我投诉|给我投诉|投诉你们|要投诉你|转人工|人工客服|找你们(?:领导|经理|主管)|叫你们(?:领导|经理|主管)"
)
# A bare answer becomes a question only when it ends like one (「…降到149了能退差价吗」).
_QUESTION_END = re.compile(r"(?:[吗么呢嘛]|[?？]|怎么办|怎么弄|可以不|行不行|能不能[^,，。]*)[^\w]*$")
# What a shopper says when they want the action itself, not an answer: these keep DIET's intent
# even when the message ends in a question.
_EXPLICIT_WISH = {
    "complain": _WANTS_COMPLAINT,
    "request_human": re.compile(r"转人工|人工|真人|找个人|客服电话|电话多少|经理|领导|主管|负责人"),
    "request_return": re.compile(
        r"我要退|我想退|要退货|想退货|帮我退|给我退|申请退|退了吧|退掉吧|不要了|给我换|帮我换|我要换|想换|补发|退款吧|怎么退|退货流程"),
    "order_status": re.compile(
        r"查一下|查下|帮我查|查查|到哪|物流|快递到|发货了吗|发了没|发货没|发了吗|什么时候发|什么时候到|几天到|还没到|"
        r"没收到|单号|订单号|\d{16}"),
}
# A long story this long (after its greeting) that ends in a question is a question for the KB.
LONG_STORY_CHARS = 60
# Anger is a complaint, not a question, whatever its question marks: 「凭什么不给退？？」
_ANGRY = re.compile(r"凭什么|什么意思|骗子|垃圾|黑心|无良|坑人|过分|气死|态度|太差|差劲|[!！]{2,}|[?？]{3,}")


@dataclass(frozen=True)
class KbEvidence:
    kind: str  # "rights" or "policy"
    confidence: float

    @property
    def intent(self) -> str:
        return "ask_policy" if self.kind == "policy" else "ask_rights"


def reroute(
    intent: Optional[str],
    ranking: Sequence[Tuple[str, float]],
    text: str,
    kb: Optional[KbEvidence],
) -> Optional[str]:
    """The intent this message should have instead of `intent`, or None to keep it.

    ranking: the classifier's (intent, confidence) list, best first.
    kb: the best knowledge-base match for the message (BM25), if any.
    """
    asks = asks_something(text)
    body = strip_greeting(text)
    if intent in CHATTY:
        if intent == "nlu_fallback" and not asks and kb is not None and kb.confidence >= KB_OVERRULE_MIN:
            return kb.intent  # 「七天无理由退货 定制商品」: no question mark, but a clear topic
        if not asks or len(body) < (LONG_QUESTION_CHARS if intent in ("goodbye", "thanks") else MIN_QUESTION_CHARS):
            return None  # 「好的谢谢，那就这样吧？」 stays a goodbye
        if intent == "inform" and not _QUESTION_END.search(body):
            return None  # 「12号收到的，订单2026…」: an answer with details, not a question
        if kb is not None and kb.confidence >= KB_ROUTE_MIN:
            return kb.intent
        runner_up = next((name for name, conf in ranking if name in ACTIONABLE and conf >= 0.1), None)
        if runner_up is None:
            return "ask_rights"
        # The runner-up is judged like a first choice: a long story that asks is a question.
        return reroute(runner_up, ranking, text, kb) or runner_up
    wish = _EXPLICIT_WISH.get(intent or "")
    if wish is not None and ends_with_question(body) and not wish.search(text) and not _ANGRY.search(text):
        # A story that ends in a question is a question, unless the shopper says what they want
        # done (我要投诉, 转人工, 帮我退了, 查下物流) or is angry: 「…商家说只能修，这样合法吗」 is
        # not a complaint intake, 「…过了七天还能退吗」 not a return form. Safety incidents are
        # routed after this, by SafetyIncidentGuard, whatever the question. A short message
        # needs a near-certain KB match, and a short one about a parcel stays an order lookup.
        if kb is not None and kb.confidence >= (KB_ROUTE_MIN if len(body) >= LONG_STORY_CHARS else KB_OVERRULE_MIN):
            return kb.intent if intent != "order_status" or len(body) >= LONG_STORY_CHARS else None
        if len(body) >= LONG_STORY_CHARS and intent != "order_status":
            return "ask_rights"  # answered from the KB, or honestly not, with a person offered
        return None
    if intent == "out_of_scope" and asks:
        if kb is not None and kb.confidence >= KB_OUT_OF_SCOPE_MIN:
            return kb.intent
        # An unsure "out of scope" whose runner-up is a store matter (「…这个枕头能退吗」) is that
        # matter, judged like a first choice.
        first = next((conf for name, conf in ranking if name == intent), 1.0)
        store = next(((n, c) for n, c in ranking if n in STORE_MATTERS and c >= RUNNER_UP_MIN), None)
        if store is not None and first < UNSURE_OUT_OF_SCOPE:
            return reroute(store[0], ranking, text, kb) or store[0]
        return None
    if intent in ("ask_rights", "ask_policy") and not asks and len(body) < LONG_STORY_CHARS:
        # A short statement that asks nothing and that the KB does not know is an answer or a
        # detail (「按键失灵，好几个键按下去没反应」 describing a fault inside the return form).
        if kb is None or kb.confidence < KB_ROUTE_MIN:
            return "inform"
    return None
