"""Finding the question in a shopper's message. Pure functions, no Rasa imports.

Real messages open with greetings, tell a story, and ask last, sometimes twice:
「您好，我上周六在你们家买的空气炸锅899，用了三次就不加热了。请问能退吗？运费谁出？」
These helpers split such a message into clauses, drop the greeting, and say which clauses ask
something, so that routing can tell a question from a greeting or a bare answer, and retrieval
can weigh the question part of a long story.
"""

from __future__ import annotations

import re
import unicodedata
from typing import List

# Greetings and forms of address that open a message and carry no topic.
_GREETING_WORDS = (
    "您好", "你好", "妳好", "您们好", "你们好", "hello", "hi", "hey", "哈喽", "哈啰", "嗨", "喂",
    "在吗", "在么", "在嘛", "在不在", "有人吗", "有人在吗", "亲亲", "亲爱的", "亲", "客服", "小保",
    "老师", "律师", "早上好", "上午好", "中午好", "下午好", "晚上好", "早", "打扰一下", "打扰了",
    "打扰", "不好意思", "麻烦一下", "麻烦了", "麻烦", "急急急", "急", "求助", "救命",
)
_SEPARATORS = " \t\u3000,，.。!！~～、:：;；…·?？"
_GREETING = re.compile(
    "^(?:[" + re.escape(_SEPARATORS) + r"]|" + "|".join(
        re.escape(w) for w in sorted(_GREETING_WORDS, key=len, reverse=True)
    ) + ")+",
    re.IGNORECASE,
)
# Clause boundaries: sentence ends, and a comma right after a question particle
# (「能退吗，能赔吗」 asks twice).
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])|(?<=[吗呢么嘛][,，、 ])")
_QUESTION_MARK = re.compile(r"[?？]")
# Words that make a clause ask something, wherever they stand in it.
_INTERROGATIVE = re.compile(
    r"怎么|怎样|怎么样|如何|能不能|能否|可不可以|可以不|可否|是不是|是否|有没有|有木有|行不行|算不算|"
    r"会不会|要不要|该不该|用不用|合不合法|合法吗|多少|几天|几号|多久|多长时间|什么时候|哪|什么|啥|咋|"
    r"为什么|为何|为啥|谁|想问|请问|咨询|想了解|想知道|求解|求问|请教|可以吗|行吗|对吗|吗"
)
# A question particle at the end of a clause (before trailing emoji and punctuation).
_FINAL_PARTICLE = re.compile(r"[吗么呢嘛][^\w]*$")


def normalise(text: str) -> str:
    """NFKC (full-width digits and letters to half-width) and trimmed."""
    return unicodedata.normalize("NFKC", text or "").strip()


def strip_greeting(text: str) -> str:
    """The message without the greetings and forms of address it opens with."""
    text = normalise(text)
    stripped = _GREETING.sub("", text, count=1)
    # Leading separators go; a trailing 「？」 stays, it is what makes a question.
    return stripped.lstrip(_SEPARATORS).rstrip() or ""


def clauses(text: str) -> List[str]:
    """The message's sentences (and particle-ended clauses), greeting removed, non-empty."""
    body = strip_greeting(text)
    parts = [p.lstrip(_SEPARATORS).rstrip(" \t\u3000,，、") for p in _SENTENCE_END.split(body)]
    return [p for p in parts if p.strip(_SEPARATORS)]


def is_question(clause: str) -> bool:
    clause = clause or ""
    return bool(
        _QUESTION_MARK.search(clause) or _FINAL_PARTICLE.search(clause) or _INTERROGATIVE.search(clause)
    )


def ends_with_question(text: str) -> bool:
    """True when one of the message's last two clauses asks something: a story that asks at its
    end, sometimes with an afterthought (「…能要求十倍赔偿吗？还是只能退款了事」)."""
    return any(is_question(c) for c in clauses(text)[-2:])


def question_clauses(text: str) -> List[str]:
    """The clauses that ask something, in order."""
    return [c for c in clauses(text) if is_question(c)]


def asks_something(text: str) -> bool:
    """True when the message asks a question (beyond 「在吗」-style greetings)."""
    return bool(question_clauses(text))


def question_focus(text: str, max_chars: int = 160) -> str:
    """The part of a message that carries its question: for a story that asks at the end, the
    question clauses with the clause just before each (「商家说只能修。这种情况能退吗」);
    the whole body when the message is short or asks nothing."""
    body = strip_greeting(text)
    if len(body) <= 40:
        return body
    parts = clauses(text)
    keep: List[str] = []
    for n, clause in enumerate(parts):
        if is_question(clause):
            if n > 0 and parts[n - 1] not in keep and not is_question(parts[n - 1]):
                keep.append(parts[n - 1])
            keep.append(clause)
    focus = "，".join(keep) if keep else body
    return focus[-max_chars:]


def split_questions(text: str) -> List[str]:
    """Separate questions of a message that asks more than one, each with the story before it
    (so 「运费谁出」 keeps the return it is about). One element when it asks once or not at all."""
    parts = clauses(text)
    asked = [n for n, c in enumerate(parts) if is_question(c)]
    if len(asked) < 2:
        return [strip_greeting(text)]
    story = "，".join(c for c in parts[: asked[0]])
    return [(story + "，" + parts[n]).strip("，") if story else parts[n] for n in asked]
