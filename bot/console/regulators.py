"""Handing cases over to regulators (issue 15, part 5): the complaint dossier of a ticket, and the
monthly report for the store and for 消协 cooperation.

The dossier follows what a complaint to a market-regulation department must carry, 《市场监督管理
投诉举报处理暂行办法》第九条 (quoted verbatim from knowledge/laws/extra in every dossier): the
complainant's name, phone and address; the respondent's name and address; the concrete demand and
the facts of the dispute. The other sections are the fields the 全国12315 platform's online
complaint form asks for (商品或服务名称、型号、数量、金额、购买时间、订单号, 投诉问题类别, 证据材料).
The form itself is not in the reference corpora we could search; the public how-to we found
(https://china.findlaw.cn/ask/question_63967364.html) describes the steps, "事实清楚、实事求是" and
"一事一单", not the field list, so that list follows the issue's brief and should be checked
against the live form. One ticket is one dossier.

Personal data: the complainant's name and phone, and the shopper's own words, are masked
(bot.privacy.mask_personal_data) unless an agent recorded the shopper's explicit consent, with who,
when and the shopper's words of consent, via POST /api/tickets/{id}/dossier-consent. The consent
lives next to the ticket in Redis (`xb:handoff:dossier-consent:<id>`, with an append-only log) and
the dossier says which applies.

Law texts are never written here or in knowledge/dossier.yml: the dossier quotes each article from
the statute files in knowledge/laws (bot.knowledge.laws), and a KB citation whose article is not in
those files is listed without text.

The monthly report reads the rights events of the month from the Redis stream `xb:risk:events`
(stream ids are millisecond timestamps, so XRANGE over the month's span), the tickets
(TicketStore.all_tickets) and the risk alerts (bot.risk.alerts.AlertStore.list).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote

import yaml
from aiohttp import web

from bot.handoff.tickets import PREFIX as TICKETS_PREFIX
from bot.handoff.tickets import Ticket
from bot.handoff.triggers import handoff_texts, rules
from bot.knowledge.laws import default_statutes
from bot.orders.demo import DEMO_CUSTOMERS, DEMO_MERCHANTS
from bot.orders.eligibility import rules_text
from bot.orders.models import SHANGHAI
from bot.paths import KNOWLEDGE_DIR
from bot.privacy import mask_personal_data
from bot.risk.events import RiskEvent, pseudonym

DOSSIER_VERSION = 1
REPORT_VERSION = 1
RISK_STREAM = "xb:risk:events"  # bot.risk.stream.STREAM
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
CONSENT_STATEMENT_CHARS = 500
SHOPPER_TURNS = 30  # the shopper's own words in a dossier: at most this many messages
TURN_CHARS = 500
XRANGE_PAGE = 1000
TOP = 15  # rows per table in the monthly report
SEVERITY_RANK = {"urgent": 0, "critical": 1, "high": 2, "normal": 3}


@lru_cache(maxsize=1)
def texts() -> Dict[str, Any]:
    """knowledge/dossier.yml, with every legal-basis article checked against the statute files."""
    loaded = yaml.safe_load((KNOWLEDGE_DIR / "dossier.yml").read_text(encoding="utf-8"))
    statutes = default_statutes()
    basis = loaded["legal_basis"]
    for ref in [*basis["all"], *(r for refs in basis["by_category"].values() for r in refs), loaded["form_source"]]:
        if ref["article"] not in getattr(statutes.get(ref["law"]), "articles", {}):
            raise ValueError(f"knowledge/dossier.yml cites 《{ref['law']}》第{ref['article']}条, not in knowledge/laws")
    return loaded


def quoted_article(law: str, article: Any) -> Optional[Dict[str, Any]]:
    """The article as the statute file has it, with its citation line; None if not in the files."""
    statute = default_statutes().get(str(law))
    try:
        number = int(article)
    except (TypeError, ValueError):
        return None
    if statute is None or number not in statute.articles:
        return None
    return {"law": statute.title, "article": number, "citation": statute.citation_line(number),
            "text": statute.articles[number]}


@lru_cache(maxsize=1)
def order_labels() -> Dict[str, Any]:
    return yaml.safe_load((KNOWLEDGE_DIR / "order_labels.yml").read_text(encoding="utf-8"))


def citation_line(law: Any, article: Any) -> str:
    quoted = quoted_article(law, article)
    return quoted["citation"] if quoted else f"《{law}》第{article}条"


# -- masking and consent ---------------------------------------------------------------------
def mask_name(name: Optional[str]) -> Optional[str]:
    """王女士 -> 王**: the family name stays, so the dossier still reads as a person."""
    if not name:
        return None
    return name[0] + "*" * max(len(name) - 1, 1)


def mask_phone(phone: Optional[str]) -> Optional[str]:
    if not phone:
        return None
    masked = mask_personal_data(phone)
    return masked if masked != phone else "*" * len(phone)  # never a phone in clear when not consented


class ConsentStore:
    """The shopper's consent to hand their name and contact details to a regulator, per ticket:
    who recorded it, when, and the shopper's words. The first consent counts until withdrawn;
    every change is appended to a log that is never rewritten."""

    def __init__(self, redis, prefix: str = TICKETS_PREFIX) -> None:
        self._redis, self._prefix = redis, prefix

    def _key(self, ticket_id: str) -> str:
        return f"{self._prefix}dossier-consent:{ticket_id}"

    def _log(self, ticket_id: str) -> str:
        return f"{self._prefix}dossier-consent-log:{ticket_id}"

    async def get(self, ticket_id: str) -> Optional[Dict[str, Any]]:
        raw = await self._redis.get(self._key(ticket_id))
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    async def record(self, ticket_id: str, by: str, statement: str, at: Optional[dt.datetime] = None) -> Dict[str, Any]:
        consent = {"by": by, "at": (at or dt.datetime.now(SHANGHAI)).isoformat(), "statement": statement}
        raw = json.dumps(consent, ensure_ascii=False)
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self._key(ticket_id), raw, nx=True)
        pipe.rpush(self._log(ticket_id), json.dumps({"op": "given", **consent}, ensure_ascii=False))
        await pipe.execute()
        return await self.get(ticket_id) or consent

    async def withdraw(self, ticket_id: str, by: str) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(self._key(ticket_id))
        pipe.rpush(self._log(ticket_id), json.dumps(
            {"op": "withdrawn", "by": by, "at": dt.datetime.now(SHANGHAI).isoformat()}, ensure_ascii=False))
        await pipe.execute()


# -- the dossier (pure) ---------------------------------------------------------------------
def _time(value: Any) -> Optional[dt.datetime]:
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, SHANGHAI)
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=SHANGHAI)


def _iso(value: Any) -> Optional[str]:
    parsed = _time(value)
    return parsed.isoformat() if parsed else None


def demand_of(ticket: Ticket) -> Optional[str]:
    """The shopper's demand (诉求): the complaint form's outcome, which ActionEscalate keeps in the
    summary as `诉求：<outcome>` (or in the evidence, if a later version stores it there)."""
    stored = (ticket.evidence or {}).get("complaint_outcome") if isinstance(ticket.evidence, dict) else None
    if stored:
        return str(stored)
    for part in ticket.summary.split("｜"):
        if part.startswith("诉求："):
            return part.removeprefix("诉求：").strip() or None
    return None


def shopper_words(transcript: Sequence[Mapping[str, Any]], masked: bool) -> List[Dict[str, Any]]:
    """What the shopper wrote, in their own words (buttons tapped, and payloads such as `/affirm`, left out)."""
    words = []
    for turn in transcript:
        text = str(turn.get("text") or "").strip()
        if turn.get("from") != "user" or not text or text.startswith("/") or turn.get("tap"):
            continue
        text = text[:TURN_CHARS]
        words.append({"at": _iso(turn.get("at")), "text": mask_personal_data(text) if masked else text})
    return words[-SHOPPER_TURNS:]


def _items(order: Optional[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    return [i for i in (order or {}).get("items") or [] if isinstance(i, dict)]


def merchant_name(merchant_id: Optional[str]) -> Optional[str]:
    return DEMO_MERCHANTS.get(merchant_id or "", merchant_id) if merchant_id else None


def products_of(order: Optional[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    products = []
    for item in _items(order):
        quantity, price = int(item.get("quantity") or 1), item.get("price")
        products.append({
            "name": item.get("name"), "sku": item.get("sku"), "category": item.get("category"),
            "quantity": quantity, "price": price,
            "amount": round(float(price) * quantity, 2) if isinstance(price, (int, float)) else None,
            "merchant_id": item.get("merchant"), "merchant_name": merchant_name(item.get("merchant")),
        })
    return products


def respondents(order: Optional[Mapping[str, Any]], store: Mapping[str, Any], missing: str) -> List[Dict[str, Any]]:
    """被投诉人: each shop that sold goods of the order (平台内经营者), then the platform itself."""
    shops = list(dict.fromkeys(i.get("merchant") for i in _items(order) if i.get("merchant")))
    found = [{"role": "平台内经营者", "merchant_id": m, "name": merchant_name(m), "address": missing} for m in shops]
    found.append({"role": "电子商务平台经营者", "merchant_id": None, "name": store["name"],
                  "website": store.get("website"), "address": store.get("address") or missing})
    return found


def order_record(order: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    if not order or not order.get("order_id"):
        return None
    amounts = [p["amount"] for p in products_of(order) if p["amount"] is not None]
    status = order.get("status")
    labels = order_labels()["order_status"]
    return {"order_id": order.get("order_id"), "created_at": _iso(order.get("created_at")),
            "amount": round(sum(amounts), 2) if amounts else None, "status": status,
            "status_label": labels.get(status, status), "signed_at": _iso(order.get("signed_at")),
            "carrier": order.get("carrier"), "tracking_no": order.get("tracking_no")}


def complainant(ticket: Ticket, order: Optional[Mapping[str, Any]], consent: Optional[Mapping[str, Any]],
                missing: str) -> Dict[str, Any]:
    """投诉人. The order system knows the phone; names are only known for the demo customers."""
    name = DEMO_CUSTOMERS.get(ticket.customer or "", {}).get("name")
    phone = (order or {}).get("phone") or DEMO_CUSTOMERS.get(ticket.customer or "", {}).get("phone")
    given = consent is not None
    notes = texts()["consent"]
    return {
        "name": (name if given else mask_name(name)) or missing,
        "phone": (phone if given else mask_phone(phone)) or missing,
        "address": missing,
        "customer_id": ticket.customer if given else None,
        "customer_ref": pseudonym(ticket.customer),  # the same pseudonym as in the rights events
        "masked": not given,
        "consent": {"given": given, **({k: consent.get(k) for k in ("by", "at", "statement")} if given else {}),
                    "note": notes["given"] if given else notes["not_given"]},
    }


def timeline(ticket: Ticket, order: Optional[Mapping[str, Any]], returns: Sequence[Mapping[str, Any]],
             consent: Optional[Mapping[str, Any]], masked: bool) -> List[Dict[str, Any]]:
    labels = rules_text()["reason_labels"]
    kinds = order_labels()["return_kind"]
    rows: List[Tuple[Any, str, str]] = []
    if order:
        rows.append((order.get("created_at"), "下单", f"订单 {order.get('order_id')}"))
        if order.get("signed_at"):
            rows.append((order.get("signed_at"), "签收", str(order.get("carrier") or "")))
    for ret in returns:
        rows.append((ret.get("created_at"), "提交售后申请",
                     f"{kinds.get(ret.get('kind'), ret.get('kind'))}（{labels.get(ret.get('reason'), ret.get('reason'))}），"
                     f"售后单 {ret.get('return_id')}"))
    rows.append((ticket.created_at, "转人工客服，生成工单", f"{ticket.category_label}，工单 {ticket.id}"))
    if ticket.claimed_at:
        rows.append((ticket.claimed_at, "客服接入", ""))
    for note in ticket.notes:
        text = str(note.get("text") or "")
        text = mask_personal_data(text) if masked else text
        rows.append((note.get("at"), "客服备注", f"{note.get('agent')}：{text}" if note.get("agent") else text))
    if consent:
        rows.append((consent.get("at"), "记录投诉人同意提供个人信息", f"记录人 {consent.get('by')}"))
    if ticket.resolved_at:
        rows.append((ticket.resolved_at, "工单处理完毕", f"满意度评分 {ticket.rating}" if ticket.rating else ""))
    dated = [(_time(at), event, detail) for at, event, detail in rows]
    dated.sort(key=lambda r: (r[0] is None, r[0] or dt.datetime.min.replace(tzinfo=SHANGHAI)))
    return [{"at": at.isoformat() if at else None, "event": event, "detail": detail} for at, event, detail in dated]


def evidence_list(ticket: Ticket, transcript_turns: int, kb: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    evidence = ticket.evidence if isinstance(ticket.evidence, dict) else {}
    from bot.console.views import kb_titles

    titles = kb_titles()
    items: List[Dict[str, Any]] = []
    for index, reference in enumerate(evidence.get("photos") or []):
        items.append({"type": "photo", "description": f"顾客上传的照片 {index + 1}", "reference": str(reference)})
    if evidence.get("order"):
        items.append({"type": "order", "description": "订单记录（转人工时的快照）",
                      "reference": evidence["order"].get("order_id")})
    items.append({"type": "transcript", "description": f"与小保及人工客服的会话记录（{transcript_turns} 条消息）",
                  "reference": f"工单 {ticket.id} / 会话 {pseudonym(ticket.sender_id)}"})
    for answer in kb:
        entry_id = str(answer.get("entry_id") or "")
        citations = [c for c in answer.get("citations") or [] if isinstance(c, dict)]
        items.append({"type": "kb_answer", "description": f"小保给出的知识库答复：{titles.get(entry_id, entry_id)}",
                      "reference": entry_id,
                      "citations": [citation_line(c.get("law"), c.get("article")) for c in citations]})
    return items


def legal_basis(category: str, kb: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """The KB citations given in the conversation, then the articles for the ticket's category;
    every text quoted from knowledge/laws, each article once."""
    basis: List[Dict[str, Any]] = []
    seen = set()

    def add(law: Any, article: Any, source: str, why: Optional[str]) -> None:
        quoted = quoted_article(law, article)
        key = (quoted["law"], quoted["article"]) if quoted else (str(law), str(article))
        if key in seen:
            return
        seen.add(key)
        if quoted is None:
            basis.append({"law": str(law), "article": article, "citation": citation_line(law, article), "text": None,
                          "verified": False, "source": source, "why": why})
        else:
            basis.append({**quoted, "verified": True, "source": source, "why": why})

    for answer in kb:
        for citation in answer.get("citations") or []:
            if isinstance(citation, dict):
                add(citation.get("law"), citation.get("article"), "kb_answer", None)
    config = texts()["legal_basis"]
    for ref in [*config["by_category"].get(category, []), *config["all"]]:
        add(ref["law"], ref["article"], "category", ref.get("why"))
    return basis


def build_dossier(ticket: Ticket, *, order: Optional[Mapping[str, Any]], returns: Sequence[Mapping[str, Any]],
                  transcript: Sequence[Mapping[str, Any]], consent: Optional[Mapping[str, Any]], generated_by: str,
                  generated_at: Optional[dt.datetime] = None) -> Dict[str, Any]:
    """The complaint dossier of one ticket (pure: everything it needs is passed in)."""
    config = texts()
    missing, masked = config["missing"], consent is None
    evidence = ticket.evidence if isinstance(ticket.evidence, dict) else {}
    kb = [a for a in evidence.get("kb_answers") or [] if isinstance(a, dict)]
    order_id = (order or {}).get("order_id")
    related = [r for r in returns if order_id and r.get("order_id") == order_id]
    summary = mask_personal_data(ticket.summary) if masked else ticket.summary
    form = quoted_article(config["form_source"]["law"], config["form_source"]["article"])
    return {
        "type": "complaint_dossier",
        "version": DOSSIER_VERSION,
        "generated_at": (generated_at or dt.datetime.now(SHANGHAI)).isoformat(),
        "generated_by": generated_by,
        "store": {"name": config["store"]["name"], "website": config["store"].get("website")},
        "form_basis": form,
        "ticket": {"id": ticket.id, "category": ticket.category, "category_label": ticket.category_label,
                   "priority": ticket.priority, "channel": ticket.channel, "status": ticket.status,
                   "created_at": ticket.created_at},
        "complainant": complainant(ticket, order, consent, missing),
        "respondents": respondents(order, config["store"], missing),
        "products": products_of(order),
        "order": order_record(order),
        "problem_category": ticket.category_label,
        "facts": {"summary": summary, "shopper_words": shopper_words(transcript, masked), "masked": masked},
        "demand": demand_of(ticket) or missing,
        "demand_options": handoff_texts()["outcomes"],
        "timeline": timeline(ticket, order, related, consent, masked),
        "evidence": evidence_list(ticket, len(transcript), kb),
        "legal_basis": legal_basis(ticket.category, kb),
    }


# -- the monthly report (pure) ----------------------------------------------------------------
def parse_month(text: Any) -> Tuple[dt.datetime, dt.datetime]:
    """'2026-11' -> the month's start and the next month's start (Asia/Shanghai). ValueError else."""
    found = MONTH.match(text) if isinstance(text, str) and len(text) == 7 else None
    if found is None or not 2000 <= int(found.group(1)) <= 2999:
        raise ValueError("month must be YYYY-MM")
    year, month = int(found.group(1)), int(found.group(2))
    start = dt.datetime(year, month, 1, tzinfo=SHANGHAI)
    end = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=SHANGHAI)
    return start, end


def _within(value: Any, start: dt.datetime, end: dt.datetime) -> bool:
    at = _time(value)
    return at is not None and start <= at < end


@dataclass
class EventTally:
    """Counts of the month's rights events, one event at a time (a month may hold many)."""

    start: dt.datetime
    end: dt.datetime
    by_kind: Counter = field(default_factory=Counter)
    rights_topics: Counter = field(default_factory=Counter)
    return_reasons: Counter = field(default_factory=Counter)
    safety_reasons: Counter = field(default_factory=Counter)
    by_merchant: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    by_day: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    skipped: int = 0

    def add(self, event: RiskEvent) -> None:
        day = dt.datetime.fromtimestamp(event.at, SHANGHAI).date().isoformat()  # first: it may raise
        self.by_kind[event.kind] += 1
        if event.kind == "rights_question":
            self.rights_topics[event.reason] += 1
        elif event.kind == "return":
            self.return_reasons[event.reason] += 1
        elif event.kind == "safety":
            self.safety_reasons[event.reason] += 1
        if event.merchant:
            self.by_merchant[event.merchant][event.kind] += 1
        self.by_day[day][event.kind] += 1

    def days(self) -> List[str]:
        count = (self.end.date() - self.start.date()).days
        return [(self.start.date() + dt.timedelta(days=n)).isoformat() for n in range(count)]


def _seconds(a: Any, b: Any) -> Optional[float]:
    first, second = _time(a), _time(b)
    return (second - first).total_seconds() if first and second else None


def ticket_figures(tickets: Sequence[Ticket], at: dt.datetime) -> Dict[str, Any]:
    """Resolution times against the SLA: claimed within sla_due, or breached (claimed late, or
    still waiting past it)."""
    claim = [s for t in tickets if t.claimed_at and (s := _seconds(t.created_at, t.claimed_at)) is not None]
    resolve = [s for t in tickets if t.resolved_at and (s := _seconds(t.created_at, t.resolved_at)) is not None]
    within = sum(1 for t in tickets if t.claimed_at and _time(t.claimed_at) <= _time(t.sla_due))
    breached = sum(1 for t in tickets if (t.claimed_at and _time(t.claimed_at) > _time(t.sla_due))
                   or (not t.claimed_at and _time(t.sla_due) <= at))
    categories = rules()["categories"]
    by_category = Counter(t.category for t in tickets)
    judged = within + breached
    return {
        "total": len(tickets),
        "by_category": [{"category": c, "label": categories.get(c, c), "count": n} for c, n in by_category.most_common()],
        "by_priority": dict(Counter(t.priority for t in tickets)),
        "claimed": sum(1 for t in tickets if t.claimed_at), "resolved": sum(1 for t in tickets if t.resolved_at),
        "open": sum(1 for t in tickets if t.status != "resolved"),
        "claimed_within_sla": within, "sla_breached": breached,
        "sla_rate": round(within / judged, 4) if judged else None,
        "median_claim_s": round(statistics.median(claim)) if claim else None,
        "max_claim_s": round(max(claim)) if claim else None,
        "median_resolve_s": round(statistics.median(resolve)) if resolve else None,
    }


def csat_figures(tickets: Sequence[Ticket], low_csat_events: int) -> Dict[str, Any]:
    ratings = [t.rating for t in tickets if t.rating]
    distribution = Counter(ratings)
    return {"ratings": len(ratings), "mean": round(statistics.mean(ratings), 2) if ratings else None,
            "distribution": [{"score": s, "count": distribution.get(s, 0)} for s in range(1, 6)],
            "low": sum(1 for r in ratings if r <= 2), "low_csat_events": low_csat_events}


def _alert_value(alert: Any, name: str, default: Any = None) -> Any:
    return alert.get(name, default) if isinstance(alert, Mapping) else getattr(alert, name, default)


def top_risks(alerts: Iterable[Any], start: dt.datetime, end: dt.datetime) -> List[Dict[str, Any]]:
    """The month's alerts, most severe and largest first, with what was done about them."""
    config = texts()
    month = [a for a in alerts if _within(_alert_value(a, "created_at"), start, end)]
    month.sort(key=lambda a: (SEVERITY_RANK.get(_alert_value(a, "severity"), 9), -(_alert_value(a, "observed") or 0)))
    risks = []
    for alert in month[:TOP]:
        severity, status = _alert_value(alert, "severity"), _alert_value(alert, "status")
        dimension, value = _alert_value(alert, "dimension"), _alert_value(alert, "value")
        history = [h for h in _alert_value(alert, "history", []) or [] if isinstance(h, Mapping)]
        resolved = next((h for h in reversed(history) if h.get("op") == "resolve"), None)
        risks.append({
            "id": _alert_value(alert, "id"), "severity": severity,
            "severity_label": config["severity"].get(severity, severity),
            "status": status, "status_label": config["alert_status"].get(status, status),
            "dimension": dimension, "value": value,
            "name": merchant_name(value) if dimension == "merchant" else value,
            "kind": _alert_value(alert, "kind"), "reason": _alert_value(alert, "reason"),
            "rule": _alert_value(alert, "rule"), "observed": _alert_value(alert, "observed"),
            "expected": _alert_value(alert, "expected"), "ratio": _alert_value(alert, "ratio"),
            "safety": bool(_alert_value(alert, "safety")), "created_at": _alert_value(alert, "created_at"),
            "assignee": _alert_value(alert, "assignee"), "confirmed_at": _alert_value(alert, "confirmed_at"),
            "warning": _alert_value(alert, "warning"),
            "notes": [{"by": n.get("by"), "at": n.get("at"), "text": mask_personal_data(str(n.get("text") or ""))}
                      for n in _alert_value(alert, "notes", []) or [] if isinstance(n, Mapping)],
            "resolved": {"by": resolved.get("by"), "at": _alert_value(alert, "resolved_at") or resolved.get("at")}
            if resolved else None,
        })
    return risks


def _ranked(counter: Counter, label) -> List[Dict[str, Any]]:
    return [{"key": key, "label": label(key), "count": n} for key, n in counter.most_common(TOP)]


def build_report(month: str, tally: EventTally, tickets: Sequence[Ticket], alerts: Iterable[Any], *,
                 generated_by: str, generated_at: Optional[dt.datetime] = None) -> Dict[str, Any]:
    """The monthly report (pure): tickets and alerts are filtered to the month here."""
    from bot.console.views import kb_titles

    config, at = texts(), generated_at or dt.datetime.now(SHANGHAI)
    kinds, titles = config["event_kinds"], kb_titles()
    reasons = rules_text()["reason_labels"]
    in_month = [t for t in tickets if _within(t.created_at, tally.start, tally.end)]
    merchants = sorted(tally.by_merchant.items(), key=lambda kv: -sum(kv[1].values()))[:TOP]
    return {
        "type": "monthly_report", "version": REPORT_VERSION, "month": month,
        "period": {"start": tally.start.isoformat(), "end": tally.end.isoformat()},
        "generated_at": at.isoformat(), "generated_by": generated_by, "store": config["store"]["name"],
        "events": {"total": sum(tally.by_kind.values()), "skipped_malformed": tally.skipped,
                   "by_kind": [{"key": k, "label": label, "count": tally.by_kind.get(k, 0)} for k, label in kinds.items()]},
        "rights_topics": _ranked(tally.rights_topics, lambda k: titles.get(k, k)),
        "return_reasons": _ranked(tally.return_reasons, lambda k: reasons.get(k, k)),
        "safety_reasons": _ranked(tally.safety_reasons, lambda k: config["safety_reasons"].get(k, k)),
        "by_merchant": [{"merchant": m, "name": merchant_name(m), "total": sum(c.values()),
                         **{k: c.get(k, 0) for k in kinds}} for m, c in merchants],
        "daily": [{"day": d, "total": sum(tally.by_day.get(d, Counter()).values()),
                   **{k: tally.by_day.get(d, Counter()).get(k, 0) for k in kinds}} for d in tally.days()],
        "complaints": {"events": tally.by_kind.get("complaint", 0),
                       "tickets": sum(1 for t in in_month if t.category == "complaint")},
        "safety": {"events": tally.by_kind.get("safety", 0),
                   "tickets": sum(1 for t in in_month if t.category == "safety")},
        "tickets": ticket_figures(in_month, at),
        "csat": csat_figures(in_month, tally.by_kind.get("low_csat", 0)),
        "top_risks": top_risks(alerts, tally.start, tally.end),
    }


# -- charts (server-rendered SVG geometry; the template draws it) ------------------------------
def bar_chart(rows: Sequence[Mapping[str, Any]], width: int = 560, row_h: int = 22) -> Dict[str, Any]:
    """Horizontal bars: one row per {label, count}, scaled to the largest."""
    top = max((int(r["count"]) for r in rows), default=0) or 1
    bars = [{"label": str(r["label"]), "count": int(r["count"]), "y": i * row_h,
             "w": round((width - 200) * int(r["count"]) / top, 1)} for i, r in enumerate(rows)]
    return {"bars": bars, "width": width, "height": max(len(bars), 1) * row_h, "row_h": row_h}


def line_chart(values: Sequence[int], width: int = 560, height: int = 140) -> Dict[str, Any]:
    """A polyline of daily counts, with the y axis from 0 to the largest count."""
    top = max(values, default=0) or 1
    step = width / max(len(values) - 1, 1)
    points = " ".join(f"{round(i * step, 1)},{round(height - height * v / top, 1)}" for i, v in enumerate(values))
    return {"points": points, "width": width, "height": height, "max": max(values, default=0), "days": len(values)}


# -- reading from Redis -----------------------------------------------------------------------
async def read_events(redis, start: dt.datetime, end: dt.datetime, stream: str = RISK_STREAM) -> EventTally:
    """XRANGE over the month's span, a page at a time; malformed entries are counted and skipped."""
    tally = EventTally(start, end)
    low, high = f"{int(start.timestamp() * 1000)}-0", str(int(end.timestamp() * 1000) - 1)
    while True:
        page = await redis.xrange(stream, min=low, max=high, count=XRANGE_PAGE)
        for entry_id, data in page:
            try:
                tally.add(RiskEvent.from_fields(data))
            except (ValueError, OverflowError, OSError):  # malformed, or a time no calendar has
                tally.skipped += 1
        if len(page) < XRANGE_PAGE:
            return tally
        last = page[-1][0].decode() if isinstance(page[-1][0], bytes) else str(page[-1][0])
        ms, seq = last.split("-")
        low = f"{ms}-{int(seq) + 1}"


async def read_alerts(redis, start: dt.datetime, end: dt.datetime) -> List[Any]:
    """The alerts created in the span: the `alerts` index is scored by creation time (unix s)."""
    try:
        from bot.risk.alerts import PREFIX as ALERTS_PREFIX
        from bot.risk.alerts import AlertStore
    except ImportError:  # the alerts module not deployed: a report without top risks
        return []
    ids = await redis.zrangebyscore(ALERTS_PREFIX + "alerts", start.timestamp(), f"({end.timestamp()}")
    store = AlertStore(redis)
    found = [await store.get(i.decode() if isinstance(i, bytes) else str(i)) for i in ids]
    return [a for a in found if a is not None]


# -- routes -----------------------------------------------------------------------------------
async def ticket_transcript(services, ticket: Ticket) -> List[Dict[str, Any]]:
    """The live transcript from Rasa; the one stored at escalation when Rasa cannot be reached."""
    from bot.console.views import transcript_from_tracker
    from bot.rasa_api import RasaApiError

    try:
        return transcript_from_tracker(await services.rasa.tracker(ticket.sender_id))
    except (RasaApiError, OSError):
        stored = (ticket.evidence or {}).get("transcript") if isinstance(ticket.evidence, dict) else None
        return [t for t in stored or [] if isinstance(t, dict)]


async def dossier_for(request: web.Request) -> Dict[str, Any]:
    from bot.console.app import SERVICES, current_agent, load_ticket
    from bot.orders.client import OrderSystemError
    from bot.orders.models import to_dict

    services, ticket = request.app[SERVICES], await load_ticket(request)
    evidence = ticket.evidence if isinstance(ticket.evidence, dict) else {}
    order = evidence.get("order") if isinstance(evidence.get("order"), dict) else None
    returns: List[Dict[str, Any]] = []
    try:
        if order is None and ticket.order_id:
            live = await services.orders.order(ticket.order_id)
            order = to_dict(live) if live is not None and live.customer_id == ticket.customer else None
        if ticket.customer:
            returns = [to_dict(r) for r in await services.orders.returns_of(ticket.customer)]
    except OrderSystemError:
        pass  # the dossier still has the ticket's own record
    consent = await ConsentStore(services.redis).get(ticket.id)
    return build_dossier(ticket, order=order, returns=returns, transcript=await ticket_transcript(services, ticket),
                         consent=consent, generated_by=await current_agent(request))


async def api_dossier(request: web.Request) -> web.Response:
    dossier = await dossier_for(request)
    name = f"dossier-{dossier['ticket']['id']}.json"
    return web.Response(
        text=json.dumps(dossier, ensure_ascii=False, indent=2), content_type="application/json",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
                 "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


async def dossier_page(request: web.Request) -> web.Response:
    from bot.console.app import render
    from aiohttp_session import get_session

    dossier = await dossier_for(request)
    response = render(request, "dossier.html", d=dossier, csrf=(await get_session(request)).get("csrf", ""),
                      agent=dossier["generated_by"])
    response.headers["Cache-Control"] = "no-store"
    return response


async def api_dossier_consent(request: web.Request) -> web.Response:
    """Records (given: true, with the shopper's words of consent) or withdraws (given: false) the
    complainant's consent to pass on their name and phone."""
    from bot.console.app import SERVICES, current_agent, json_error, load_ticket

    ticket, agent = await load_ticket(request), await current_agent(request)
    try:
        body = await request.json()
    except ValueError:
        return json_error(400, "请求格式不正确，请刷新页面后重试")
    if not isinstance(body, dict) or not isinstance(body.get("given"), bool):
        return json_error(400, "请说明顾客是否同意")
    store = ConsentStore(request.app[SERVICES].redis)
    if not body["given"]:
        await store.withdraw(ticket.id, agent)
        return web.json_response({"ok": True, "consent": None})
    statement = body.get("statement")
    if not isinstance(statement, str) or not statement.strip() or len(statement) > CONSENT_STATEMENT_CHARS:
        return json_error(400, f"请记录顾客同意的原话（1到{CONSENT_STATEMENT_CHARS}个字）")
    return web.json_response({"ok": True, "consent": await store.record(ticket.id, agent, statement.strip())})


async def monthly_report(request: web.Request) -> Dict[str, Any]:
    from bot.console.app import SERVICES, current_agent

    services, agent = request.app[SERVICES], await current_agent(request)
    if not await services.agents.is_supervisor(agent):
        raise web.HTTPForbidden(text=json.dumps({"error": "仅主管可以查看月度报告"}, ensure_ascii=False),
                                content_type="application/json")
    month = request.query.get("month") or dt.datetime.now(SHANGHAI).strftime("%Y-%m")
    try:
        start, end = parse_month(month)
    except ValueError:
        raise web.HTTPBadRequest(text=json.dumps({"error": "month must be YYYY-MM"}), content_type="application/json")
    tally = await read_events(services.redis, start, end)
    return build_report(month, tally, await services.tickets.all_tickets(),
                        await read_alerts(services.redis, start, end), generated_by=agent)


async def api_monthly_report(request: web.Request) -> web.Response:
    report = await monthly_report(request)
    return web.json_response(report, dumps=lambda o: json.dumps(o, ensure_ascii=False),
                             headers={"Cache-Control": "no-store"})


async def report_page(request: web.Request) -> web.Response:
    from bot.console.app import render

    report = await monthly_report(request)
    charts = {
        "kinds": bar_chart(report["events"]["by_kind"]),
        "topics": bar_chart(report["rights_topics"]),
        "reasons": bar_chart(report["return_reasons"]),
        "merchants": bar_chart([{"label": m["name"], "count": m["total"]} for m in report["by_merchant"]]),
        "csat": bar_chart([{"label": f"{r['score']} 分", "count": r["count"]} for r in report["csat"]["distribution"]]),
        "daily": line_chart([d["total"] for d in report["daily"]]),
    }
    response = render(request, "report.html", r=report, charts=charts, agent=report["generated_by"])
    response.headers["Cache-Control"] = "no-store"
    return response


def setup_regulators(app: web.Application) -> None:
    """Adds the dossier and monthly-report routes (called from bot.console.app.create_app)."""
    app.router.add_get("/api/tickets/{ticket_id}/dossier.json", api_dossier)
    app.router.add_get("/tickets/{ticket_id}/dossier", dossier_page)
    app.router.add_post("/api/tickets/{ticket_id}/dossier-consent", api_dossier_consent)
    app.router.add_get("/api/reports/monthly.json", api_monthly_report)
    app.router.add_get("/reports/monthly", report_page)


# -- the README's example ---------------------------------------------------------------------
def example_dossier(today: dt.date = dt.date(2026, 11, 20)) -> Dict[str, Any]:
    """A dossier built from the demo data (docs/examples/dossier-example.json):
    `python -m bot.console.regulators > docs/examples/dossier-example.json`."""
    from bot.knowledge.kb import load_entries
    from bot.orders.demo import demo_orders
    from bot.orders.models import to_dict

    order = to_dict(next(o for o in demo_orders(today) if any(i.name == "降噪蓝牙耳机" for i in o.items)))
    entry = next(e for e in load_entries() if e.kind == "rights" and any(c.article == 24 for c in e.citations))
    created = dt.datetime(today.year, today.month, today.day, 10, 5, tzinfo=SHANGHAI)
    base = created.timestamp()
    transcript = [
        {"from": "user", "text": "耳机用了三天左耳就没声音了，我要投诉", "at": base - 240},
        {"from": "bot", "text": entry.answer, "at": base - 230},
        {"from": "user", "text": "商家不给退，我的电话是13800001234，请尽快联系我", "at": base - 120},
        {"from": "user", "text": "退款", "at": base - 60},
    ]
    ticket = Ticket(
        id=f"T{today:%Y%m%d}00042", sender_id="web:demo-conversation", category="complaint", priority="normal",
        channel="socketio", summary=f"投诉｜耳机用了三天左耳就没声音了，商家不给退｜诉求：退款｜订单：{order['order_id']}",
        created_at=created.isoformat(), sla_due=(created + dt.timedelta(minutes=60)).isoformat(), customer="c1001",
        order_id=order["order_id"], status="resolved", assignee="zhangsan",
        claimed_at=(created + dt.timedelta(minutes=4)).isoformat(),
        resolved_at=(created + dt.timedelta(minutes=38)).isoformat(), rating=4,
        notes=[{"agent": "zhangsan", "text": "已联系商家，商家同意退货退款", "at": (created + dt.timedelta(minutes=20)).isoformat()}],
        evidence={"order": order, "photos": ["photo:wechat-media:0123456789abcdef0123456789abcdef.jpg"],
                  "kb_answers": [{"type": "rights_answer", "entry_id": entry.id, "confidence": 0.91,
                                  "citations": [c.payload() for c in entry.citations]}]},
    )
    returns = [{"return_id": "R0001", "order_id": order["order_id"], "kind": "return", "reason": "quality",
                "created_at": (created - dt.timedelta(days=1)).isoformat()}]
    return build_dossier(ticket, order=order, returns=returns, transcript=transcript, consent=None,
                         generated_by="zhangsan", generated_at=created + dt.timedelta(minutes=40))


if __name__ == "__main__":
    sys.stdout.write(json.dumps(example_dossier(), ensure_ascii=False, indent=2) + "\n")
