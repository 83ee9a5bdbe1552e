"""`make eval`: the realistic shopper messages (tests/data/realistic/) through the whole running
stack, each as the first message of a fresh conversation, the way a new shopper meets 小保.

It starts Redis (embedded unless REDIS_URL is set), the action server and the Rasa server with
the trained model, POSTs every message to the REST webhook as a logged-in shopper, and reads
what happened from the conversation's tracker (which actions ran, what the bot said, which
articles it cited). A clarification (knowledge-base choices or the two-stage fallback) is then
"clicked" once, on its first button, for the one-click figures.

Figures (each a fraction of the messages it applies to):
* direct routing: the first reply's behaviour is one the message accepts (a knowledge-base
  answer counts when the message accepts a rights or a policy answer: lenient);
* strict routing: the same, rights and policy told apart;
* one-click routing: the same after clicking the first button of a clarification;
* direct / one-click citation: rights questions whose reply cites an acceptable article;
* clarification: first replies that offered choices instead of an answer;
* direct precision: of the first replies that answered from the knowledge base, those that
  answered right (acceptable behaviour and, where labelled, an acceptable article or entry).
Misses go to results/eval-misses.yml. The last line is the summary the README quotes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
import yaml  # noqa: E402

from bot.identity import sign_customer_token  # noqa: E402
from bot.model import ensure_trained  # noqa: E402
from bot.paths import ROOT  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.stack import action_server, rasa_server, service_env  # noqa: E402
from tests.conftest import configured_or_embedded_redis, free_port  # noqa: E402

REALISTIC = ROOT / "tests" / "data" / "realistic"
MISSES = ROOT / "results" / "eval-misses.yml"
TOKEN = "eval-api-token-" + uuid.uuid4().hex[:8]
SIGNING_SECRET = "eval-signing-secret"
READY_TIMEOUT_S = 300
CONCURRENCY = 4
BEHAVIOURS = ("rights", "policy", "return", "order", "human", "out_of_scope", "smalltalk")
CLARIFY = "clarify"
KB_ANSWERS = {"rights", "policy"}

# What ran in a turn -> the behaviour the shopper met (first match wins).
ACTION_BEHAVIOUR = (
    ("action_escalate", "human"),
    ("complaint_form", "human"),
    ("return_form", "return"),
    ("action_order_status", "order"),
    ("action_out_of_scope", "out_of_scope"),
    ("action_two_stage_fallback", CLARIFY),
    ("action_default_ask_affirmation", CLARIFY),
)
SMALLTALK_UTTERANCES = {"utter_greet", "utter_goodbye", "utter_thanks", "utter_iamabot", "utter_anything_else",
                        "utter_unreadable"}


@dataclass
class Message:
    text: str
    accept: Tuple[str, ...]
    articles: Set[Tuple[str, int]]
    entries: Set[str]
    source: str


@dataclass
class Reply:
    behaviour: str
    cited: Set[Tuple[str, int]] = field(default_factory=set)
    entries: List[str] = field(default_factory=list)
    buttons: List[Dict[str, str]] = field(default_factory=list)
    texts: List[str] = field(default_factory=list)
    actions: List[str] = field(default_factory=list)
    intent: str = ""


def load_messages(folder: Path = REALISTIC) -> List[Message]:
    messages = []
    for path in sorted(folder.glob("*.yml")):
        for card in yaml.safe_load(path.read_text(encoding="utf-8"))["cards"]:
            for raw in card["messages"]:
                accept = tuple(raw["accept"])
                unknown = set(accept) - set(BEHAVIOURS)
                if unknown:
                    raise ValueError(f"{path.name}: unknown behaviours {unknown} for {raw['text'][:30]}")
                articles = set()
                for item in raw.get("articles") or []:
                    law, _, number = str(item).rpartition(":")
                    articles.add((law.strip(), int(number)))
                messages.append(Message(str(raw["text"]), accept, articles, set(raw.get("entries") or []), path.name))
    return messages


def classify(events: List[Dict[str, Any]]) -> Reply:
    """The behaviour of the bot's reply to the latest user message, from the tracker's events."""
    last_user = max((i for i, e in enumerate(events) if e.get("event") == "user"), default=-1)
    turn = events[last_user + 1 :]
    actions = [e.get("name") for e in turn if e.get("event") == "action"]
    bots = [e for e in turn if e.get("event") == "bot"]
    parsed = (events[last_user].get("parse_data") or {}) if last_user >= 0 else {}
    reply = Reply("other", actions=[a for a in actions if a != "action_listen"],
                  intent=(parsed.get("intent") or {}).get("name") or "")
    for bot in bots:
        data = bot.get("data") or {}
        reply.texts.append(bot.get("text") or "")
        reply.buttons.extend(data.get("buttons") or [])
        custom = data.get("custom") or {}
        if custom.get("type") in ("rights_answer", "policy_answer"):
            reply.entries.append(custom.get("entry_id"))
            for citation in custom.get("citations") or []:
                reply.cited.add((citation["law"], int(citation["article"])))
    utterances = [(b.get("metadata") or {}).get("utter_action") for b in bots]
    if "action_out_of_scope" in actions and any((u or "").startswith("utter_") and "_answer" in u for u in utterances):
        actions = ["action_answer_question"]  # 「out of scope」 answered from the KB after all
    for action, behaviour in ACTION_BEHAVIOUR:
        if action in actions:
            reply.behaviour = behaviour
            return reply
    if "action_answer_question" in actions:
        kinds = [u for u in utterances if u]
        if any(u.startswith("utter_rights_answer") for u in kinds):
            reply.behaviour = "rights"
        elif any(u.startswith("utter_policy_answer") for u in kinds):
            reply.behaviour = "policy"
        elif "utter_kb_clarify" in kinds:
            reply.behaviour = CLARIFY
        else:
            reply.behaviour = "kb_none"
        return reply
    if "utter_out_of_scope" in utterances:  # before action_out_of_scope existed
        reply.behaviour = "out_of_scope"
    elif any(u in SMALLTALK_UTTERANCES for u in utterances) or "action_accept_offer" in actions:
        reply.behaviour = "smalltalk"
    elif "action_handle_inform" in actions:
        reply.behaviour = "inform"
    elif reply.actions:
        reply.behaviour = "other:" + reply.actions[0]
    return reply


def routed(message: Message, reply: Reply, lenient: bool = True) -> bool:
    if reply.behaviour in message.accept:
        return True
    return lenient and reply.behaviour in KB_ANSWERS and bool(KB_ANSWERS & set(message.accept))


def cites(message: Message, reply: Reply) -> bool:
    return bool(message.articles & reply.cited)


def answered_right(message: Message, reply: Reply) -> bool:
    if not routed(message, reply, lenient=False):
        return False
    if message.articles and reply.behaviour == "rights":
        return cites(message, reply)
    if message.entries and reply.behaviour == "policy":
        return bool(message.entries & set(reply.entries))
    return True


class Client:
    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self.session, self.port = session, port
        self.metadata = {"customer_token": sign_customer_token("c1001", SIGNING_SECRET)}

    async def say(self, sender: str, text: str) -> Reply:
        body = {"sender": sender, "message": text, "metadata": self.metadata}
        async with self.session.post(f"http://127.0.0.1:{self.port}/webhooks/rest/webhook", json=body) as response:
            await response.read()
        url = f"http://127.0.0.1:{self.port}/conversations/{sender}/tracker?token={TOKEN}"
        async with self.session.get(url) as response:
            tracker = await response.json(content_type=None)
        return classify(tracker.get("events") or [])


async def run_all(port: int, messages: Sequence[Message]) -> List[Tuple[Reply, Reply]]:
    results: List[Optional[Tuple[Reply, Reply]]] = [None] * len(messages)
    queue: "asyncio.Queue[int]" = asyncio.Queue()
    for n in range(len(messages)):
        queue.put_nowait(n)
    run_id = uuid.uuid4().hex[:6]

    async def worker(client: Client) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            sender = f"eval-{run_id}-{n}"
            first = await client.say(sender, messages[n].text)
            second = first
            if first.behaviour == CLARIFY and first.buttons:
                await asyncio.sleep(0.25)  # a person reads before tapping
                second = await client.say(sender, first.buttons[0]["payload"])
            results[n] = (first, second)
            done = sum(r is not None for r in results)
            if done % 50 == 0:
                print(f"  {done}/{len(messages)}", flush=True)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        client = Client(session, port)
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return results  # type: ignore[return-value]


def report(messages: Sequence[Message], results: Sequence[Tuple[Reply, Reply]]) -> str:
    n = len(messages)
    rights_questions = [i for i, m in enumerate(messages) if m.articles]
    direct = sum(routed(m, r[0]) for m, r in zip(messages, results)) / n
    strict = sum(routed(m, r[0], lenient=False) for m, r in zip(messages, results)) / n
    one_click = sum(routed(m, r[1]) for m, r in zip(messages, results)) / n
    citation = sum(cites(messages[i], results[i][0]) for i in rights_questions) / max(1, len(rights_questions))
    citation_1 = sum(cites(messages[i], results[i][1]) for i in rights_questions) / max(1, len(rights_questions))
    clarified = sum(r[0].behaviour == CLARIFY for r in results) / n
    answers = [i for i, r in enumerate(results) if r[0].behaviour in KB_ANSWERS]
    precision = sum(answered_right(messages[i], results[i][0]) for i in answers) / max(1, len(answers))

    print(f"\nrealistic messages    {n} in {len({m.source for m in messages})} files; "
          f"{len(rights_questions)} rights questions with labelled articles")
    print(f"direct routing        {direct:.3f}  (strict: rights and policy told apart {strict:.3f})")
    print(f"one-click routing     {one_click:.3f}")
    print(f"direct citation       {citation:.3f}")
    print(f"one-click citation    {citation_1:.3f}")
    print(f"clarification         {clarified:.3f}")
    print(f"direct KB answers     {len(answers) / n:.3f} of messages; right {precision:.3f}")
    print("\nper file: direct routing / citation")
    for source in sorted({m.source for m in messages}):
        idx = [i for i, m in enumerate(messages) if m.source == source]
        cited = [i for i in idx if messages[i].articles]
        print(f"  {source:<26} {sum(routed(messages[i], results[i][0]) for i in idx) / len(idx):.2f} / "
              f"{sum(cites(messages[i], results[i][0]) for i in cited) / max(1, len(cited)):.2f}  ({len(idx)})")

    confusion: Dict[str, Counter] = defaultdict(Counter)
    for message, (first, _) in zip(messages, results):
        confusion[message.accept[0]][first.behaviour.split(":")[0]] += 1
    columns = sorted({c for row in confusion.values() for c in row})
    print("\nwhere first replies went (rows: first acceptable behaviour; columns: what happened)")
    print(" " * 14 + "".join(f"{c[:9]:>10}" for c in columns))
    for row in BEHAVIOURS:
        if row in confusion:
            print(f"{row:<14}" + "".join(f"{confusion[row][c]:>10}" for c in columns))

    misses = [
        {"text": m.text, "file": m.source, "accept": list(m.accept), "got": r[0].behaviour,
         "entries": r[0].entries, "cited": sorted(f"{law}:{a}" for law, a in r[0].cited),
         "wanted_articles": sorted(f"{law}:{a}" for law, a in m.articles), "intent": r[0].intent, "actions": r[0].actions,
         "reply": [t[:80] for t in r[0].texts][:3]}
        for m, r in zip(messages, results)
        if not routed(m, r[0]) or (m.articles and not cites(m, r[0]))
    ]
    MISSES.parent.mkdir(exist_ok=True)
    MISSES.write_text(yaml.safe_dump({"misses": misses}, allow_unicode=True, sort_keys=False), encoding="utf-8")
    print(f"\n{len(misses)} misses written to {MISSES.relative_to(ROOT)}")
    return (f"eval: direct routing {direct:.2f}; one-click routing {one_click:.2f}; direct citation {citation:.2f}; "
            f"one-click citation {citation_1:.2f}; clarification {clarified:.2f}; direct precision {precision:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, help="only the first N messages (a quick look)")
    args = parser.parse_args()
    messages = load_messages()
    if args.limit:
        messages = messages[: args.limit]
    settings = Settings.from_env()
    model = ensure_trained(settings)
    logs = Path(tempfile.mkdtemp(prefix="xiaobao-eval-"))
    redis_url, redis = configured_or_embedded_redis(logs / "redis")
    action_port, rasa_port = free_port(), free_port()
    env = {**service_env(redis_url, action_port), "STORE_SIGNING_SECRET": SIGNING_SECRET,
           "SENDER_MAX_PER_SECOND": "0", "WECHAT_TOKEN": "eval", "WECHAT_APPID": "wxeval", "WECHAT_SECRET": "eval"}
    processes = [
        action_server(action_port, env, output=open(logs / "actions.log", "ab")).start(),
        rasa_server(model, rasa_port, TOKEN, env, output=open(logs / "rasa.log", "ab")).start(),
    ]
    try:
        for process in processes:
            process.wait_ready(READY_TIMEOUT_S)
        print(f"{len(messages)} realistic messages, each in a fresh conversation (logs in {logs})", flush=True)
        started = time.monotonic()
        results = asyncio.run(run_all(rasa_port, messages))
        print(f"took {time.monotonic() - started:.0f} s")
        summary = report(messages, results)
    finally:
        for process in reversed(processes):
            process.stop()
        if redis is not None:
            redis.stop()
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
