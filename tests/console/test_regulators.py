"""Handing cases over to regulators (issue 15, part 5): the complaint dossier and the monthly
report, as pure functions and through the console app (real Redis, a fake Rasa API on loopback)."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.console import regulators
from bot.console.app import SERVICES, ConsoleConfig, create_app
from bot.console.regulators import (
    EventTally, bar_chart, build_report, demand_of, example_dossier, line_chart, mask_name, mask_phone, parse_month,
    setup_regulators, top_risks,
)
from bot.handoff.tickets import Ticket
from bot.knowledge.kb import load_entries
from bot.knowledge.laws import LAWS_DIR
from bot.orders.demo import DEMO_CUSTOMERS, demo_orders
from bot.orders.models import SHANGHAI, to_dict
from bot.risk.events import new_event
from tests.console.test_console import RASA_TOKEN, FakeRasa, login

PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parents[2]
SECTIONS = {"type", "version", "generated_at", "generated_by", "store", "form_basis", "ticket", "complainant",
            "respondents", "products", "order", "problem_category", "facts", "demand", "demand_options", "timeline",
            "evidence", "legal_basis"}
PHONE, NAME = DEMO_CUSTOMERS["c1001"]["phone"], DEMO_CUSTOMERS["c1001"]["name"]


def law_files() -> dict:
    """title -> the statute file's whole text, read here independently of bot.knowledge.laws."""
    files = {}
    for path in LAWS_DIR.rglob("*.md"):
        text = path.read_text(encoding="utf-8")
        title = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), None)
        if title:
            files[title] = text
    return files


def assert_verbatim(basis: list) -> None:
    files = law_files()
    for item in basis:
        assert item["text"], item
        body = files[item["law"]]
        for paragraph in item["text"].split("\n"):
            assert paragraph in body, (item["citation"], paragraph)


# -- pure ----------------------------------------------------------------------------------
@pytest.mark.parametrize("month", ["../../etc", "2026-13", "2026-00", "2026-1", " 2026-11", "2026-11 ", "2026/11",
                                   "1999-12", "x" * 100000, "２０２６-１１", "2026-11\n", "", None, "2026-11-01"])
def test_a_malformed_month_is_refused(month):
    with pytest.raises(ValueError):
        parse_month(month)


def test_a_month_is_its_span_in_shanghai_time():
    start, end = parse_month("2026-12")
    assert start == dt.datetime(2026, 12, 1, tzinfo=SHANGHAI) and end == dt.datetime(2027, 1, 1, tzinfo=SHANGHAI)
    assert parse_month("2024-02")[1] - parse_month("2024-02")[0] == dt.timedelta(days=29)


def test_names_and_phones_are_masked():
    assert mask_name("王女士") == "王**" and mask_name("李") == "李*" and mask_name(None) is None
    assert mask_phone("13800001234") == "138****1234"
    assert mask_phone("12345") == "*****"  # not a phone shape: still never shown


def test_the_demand_comes_from_the_complaint_form_outcome():
    ticket = Ticket("T1", "s", "complaint", "normal", "web", "投诉｜坏了｜诉求：换货｜订单：1", "2026-01-01T00:00:00+08:00",
                    "2026-01-01T01:00:00+08:00")
    assert demand_of(ticket) == "换货"
    assert demand_of(Ticket(**{**ticket.__dict__, "summary": "转人工｜在吗"})) is None


def test_the_legal_basis_mapping_names_only_articles_in_the_statute_files():
    config = regulators.texts()["legal_basis"]
    refs = [*config["all"], *(r for refs in config["by_category"].values() for r in refs)]
    assert refs and all(regulators.quoted_article(r["law"], r["article"]) for r in refs)
    assert regulators.quoted_article("中华人民共和国消费者权益保护法", 999) is None
    assert regulators.quoted_article("没有这部法", 1) is None


def test_the_example_dossier_is_complete_masked_and_quotes_the_law_verbatim():
    dossier = example_dossier()
    assert set(dossier) == SECTIONS
    text = json.dumps(dossier, ensure_ascii=False)
    assert PHONE not in text and NAME not in text and "138****1234" in text
    assert dossier["complainant"]["masked"] and dossier["facts"]["masked"]
    assert dossier["demand"] == "退款"
    assert dossier["respondents"][0]["name"] == "数码先锋专营店"
    assert dossier["products"][0]["sku"] == "SKU-40001"
    assert [e["type"] for e in dossier["evidence"]] == ["photo", "order", "transcript", "kb_answer"]
    assert [t["event"] for t in dossier["timeline"]][:3] == ["下单", "签收", "提交售后申请"]
    cited = {(b["law"], b["article"]) for b in dossier["legal_basis"]}
    assert ("中华人民共和国消费者权益保护法", 39) in cited and ("中华人民共和国消费者权益保护法", 24) in cited
    assert_verbatim(dossier["legal_basis"] + [dossier["form_basis"]])


def test_a_safety_ticket_without_an_order_cites_the_safety_articles_and_asks_for_the_rest():
    ticket = Ticket("T9", "web:x", "safety", "urgent", "socketio", "安全事故｜充电器冒烟烫伤了手",
                    "2026-11-02T09:00:00+08:00", "2026-11-02T09:05:00+08:00")
    dossier = regulators.build_dossier(ticket, order=None, returns=[], transcript=[], consent=None, generated_by="a")
    consumer, ecommerce = "中华人民共和国消费者权益保护法", "中华人民共和国电子商务法"
    articles = [(b["law"], b["article"]) for b in dossier["legal_basis"]]
    assert articles == [(consumer, 7), (consumer, 18), (consumer, 19), (consumer, 49), (ecommerce, 38),
                        (consumer, 39), (consumer, 44), (ecommerce, 59)]
    assert all(b["source"] == "category" and b["verified"] for b in dossier["legal_basis"])
    assert_verbatim(dossier["legal_basis"])
    assert dossier["demand"] == "待补充" and dossier["order"] is None and dossier["products"] == []
    assert dossier["complainant"]["name"] == "待补充" and dossier["complainant"]["phone"] == "待补充"
    assert [r["role"] for r in dossier["respondents"]] == ["电子商务平台经营者"]


def test_the_committed_example_is_what_the_code_generates():
    committed = json.loads((ROOT / "docs/examples/dossier-example.json").read_text(encoding="utf-8"))
    fresh = example_dossier()
    # Pseudonyms depend on RISK_PSEUDONYM_KEY; everything else must match.
    for d in (committed, fresh):
        d["complainant"].pop("customer_ref")
        d["evidence"] = [e for e in d["evidence"] if e["type"] != "transcript"]
    assert committed == fresh


def test_charts_scale_to_the_largest_value():
    chart = bar_chart([{"label": "a", "count": 10}, {"label": "b", "count": 5}, {"label": "c", "count": 0}])
    assert [b["w"] for b in chart["bars"]] == [360.0, 180.0, 0.0] and chart["height"] == 66
    line = line_chart([0, 4, 2], width=100, height=40)
    assert line["points"] == "0.0,40.0 50.0,0.0 100.0,20.0" and line["max"] == 4
    assert bar_chart([])["bars"] == [] and line_chart([])["points"] == ""


def test_top_risks_are_the_months_alerts_most_severe_first():
    def alert(id, severity, created, observed=3, **extra):
        return {"id": id, "severity": severity, "status": "open", "created_at": created, "observed": observed,
                "dimension": "merchant", "value": "m-shuma", "kind": "complaint", "reason": "quality", "rule": "r",
                "history": [], "notes": [], **extra}

    alerts = [alert("a1", "high", "2026-11-03T10:00:00+08:00"), alert("a2", "urgent", "2026-11-20T10:00:00+08:00"),
              alert("a3", "critical", "2026-10-31T23:59:00+08:00"),
              alert("a4", "high", "2026-11-05T10:00:00+08:00", observed=9, status="resolved",
                    history=[{"op": "resolve", "by": "sup", "at": "2026-11-06T10:00:00+08:00"}],
                    notes=[{"by": "sup", "text": "已下架，联系人 13912345678", "at": "2026-11-06T09:00:00+08:00"}])]
    start, end = parse_month("2026-11")
    risks = top_risks(alerts, start, end)
    assert [r["id"] for r in risks] == ["a2", "a4", "a1"]
    assert risks[1]["resolved"] == {"by": "sup", "at": "2026-11-06T10:00:00+08:00"}
    assert risks[1]["status_label"] == "已解决" and risks[1]["name"] == "数码先锋专营店"
    assert "13912345678" not in risks[1]["notes"][0]["text"]


# -- through the app -------------------------------------------------------------------------
def with_regulators(app):
    """create_app wires setup_regulators; until it does, add the routes here."""
    if not any(getattr(r, "canonical", "") == "/reports/monthly" for r in app.router.resources()):
        setup_regulators(app)
    return app


@pytest.fixture
async def reg_env(redis_url, aiohttp_server, aiohttp_client):
    return await build_env(redis_url, aiohttp_server, aiohttp_client)


@pytest.fixture
async def private_env(embedded_redis, aiohttp_server, aiohttp_client):
    """On a Redis of its own: the rights-event stream only takes ids above its newest, so a past
    month can only be seeded into an empty stream."""
    return await build_env(embedded_redis.url, aiohttp_server, aiohttp_client)


async def build_env(redis_url, aiohttp_server, aiohttp_client):
    rasa = FakeRasa()
    rasa_server = await aiohttp_server(rasa.app())
    config = ConsoleConfig(redis_url=redis_url, rasa_url=str(rasa_server.make_url("")), rasa_token=RASA_TOKEN,
                           session_key=Fernet.generate_key(), poll_interval_s=0.05, sla_interval_s=3600)
    app = with_regulators(create_app(config))
    client = await aiohttp_client(app)
    services = app[SERVICES]
    agent, supervisor = f"ag{uuid.uuid4().hex[:6]}", f"sup{uuid.uuid4().hex[:6]}"
    await services.agents.add(agent, PASSWORD)
    await services.agents.add(supervisor, PASSWORD, role="supervisor")

    entry = next(e for e in load_entries() if e.kind == "rights" and e.citations)
    order = to_dict(next(o for o in demo_orders(dt.date.today()) if o.customer_id == "c1001" and o.signed_at))
    sender = f"web:{uuid.uuid4().hex[:8]}"
    rasa.events[sender] = [
        {"event": "user", "text": f"东西坏了，我要投诉，电话 {PHONE}", "timestamp": 1.7e9},
        {"event": "bot", "text": entry.answer, "timestamp": 1.7e9 + 5},
        {"event": "user", "text": "/affirm", "timestamp": 1.7e9 + 9},
    ]
    evidence = {"order": order, "photos": ["photo:wechat-media:0123456789abcdef0123456789abcdef.jpg"],
                "kb_answers": [{"type": "rights_answer", "entry_id": entry.id,
                                "citations": [c.payload() for c in entry.citations]}]}
    ticket, _ = await services.tickets.create(sender, "complaint", "normal", "socketio",
                                              f"投诉｜东西坏了，电话 {PHONE}｜诉求：退款｜订单：{order['order_id']}",
                                              customer="c1001", order_id=order["order_id"], evidence=evidence)
    return {"client": client, "app": app, "services": services, "agent": agent, "supervisor": supervisor,
            "ticket": ticket, "entry": entry, "order": order, "aiohttp_client": aiohttp_client}


async def test_not_logged_in_gets_nothing(reg_env):
    client, ticket = reg_env["client"], reg_env["ticket"]
    assert (await client.get(f"/api/tickets/{ticket.id}/dossier.json")).status == 401
    assert (await client.get("/api/reports/monthly.json?month=2026-11")).status == 401
    assert (await client.post(f"/api/tickets/{ticket.id}/dossier-consent", json={"given": True})).status == 401
    page = await client.get(f"/tickets/{ticket.id}/dossier", allow_redirects=False)
    assert page.status == 302 and page.headers["Location"] == "/login"
    assert (await client.get("/reports/monthly", allow_redirects=False)).status == 302


async def test_the_dossier_downloads_with_every_section_masked(reg_env):
    client, ticket, order = reg_env["client"], reg_env["ticket"], reg_env["order"]
    assert await login(client, reg_env["agent"])
    response = await client.get(f"/api/tickets/{ticket.id}/dossier.json")
    assert response.status == 200 and response.headers["Content-Disposition"].startswith("attachment;")
    assert f"dossier-{ticket.id}.json" in response.headers["Content-Disposition"]
    body = await response.text()
    dossier = json.loads(body)
    assert set(dossier) == SECTIONS
    assert dossier["generated_by"] == reg_env["agent"] and dossier["version"] == regulators.DOSSIER_VERSION
    assert PHONE not in body and NAME not in body
    assert dossier["complainant"] == {**dossier["complainant"], "name": "王**", "phone": "138****1234",
                                      "masked": True, "customer_id": None}
    assert dossier["complainant"]["consent"]["given"] is False
    assert dossier["order"]["order_id"] == order["order_id"]
    assert dossier["order"]["amount"] == round(sum(i["price"] * i["quantity"] for i in order["items"]), 2)
    assert [p["sku"] for p in dossier["products"]] == [i["sku"] for i in order["items"]]
    assert dossier["respondents"][-1]["role"] == "电子商务平台经营者"
    assert dossier["demand"] == "退款"
    assert [w["text"] for w in dossier["facts"]["shopper_words"]] == ["东西坏了，我要投诉，电话 138****1234"]
    assert {t["event"] for t in dossier["timeline"]} >= {"下单", "转人工客服，生成工单"}
    assert {e["type"] for e in dossier["evidence"]} == {"photo", "order", "transcript", "kb_answer"}
    kb_cited = {(c.law, c.article) for c in reg_env["entry"].citations}
    assert kb_cited <= {(b["law"], b["article"]) for b in dossier["legal_basis"] if b["source"] == "kb_answer"}
    assert_verbatim([b for b in dossier["legal_basis"] if b["verified"]] + [dossier["form_basis"]])


async def test_consent_shows_name_and_phone_and_can_be_withdrawn(reg_env):
    client, ticket, redis = reg_env["client"], reg_env["ticket"], reg_env["services"].redis
    csrf = await login(client, reg_env["agent"])
    url = f"/api/tickets/{ticket.id}/dossier-consent"
    statement = "顾客：同意把我的姓名和电话提供给12315"
    assert (await client.post(url, json={"given": True, "statement": statement})).status == 403  # no CSRF token
    headers = {"X-CSRF-Token": csrf}
    for bad in ({"given": "yes"}, {"given": True}, {"given": True, "statement": "  "},
                {"given": True, "statement": "x" * 501}, [1, 2]):
        assert (await client.post(url, json=bad, headers=headers)).status == 400, bad
    assert (await client.post(url, data="not json", headers=headers)).status == 400
    assert (await client.post("/api/tickets/T-nope/dossier-consent", json={"given": False}, headers=headers)).status == 404

    recorded = await client.post(url, json={"given": True, "statement": statement}, headers=headers)
    assert recorded.status == 200
    dossier = await (await client.get(f"/api/tickets/{ticket.id}/dossier.json")).json()
    assert dossier["complainant"]["name"] == NAME and dossier["complainant"]["phone"] == PHONE
    assert dossier["complainant"]["customer_id"] == "c1001" and dossier["complainant"]["masked"] is False
    consent = dossier["complainant"]["consent"]
    assert consent["given"] and consent["by"] == reg_env["agent"] and consent["statement"] == statement
    assert PHONE in dossier["facts"]["shopper_words"][0]["text"]
    assert "记录投诉人同意提供个人信息" in [t["event"] for t in dossier["timeline"]]
    page = await (await client.get(f"/tickets/{ticket.id}/dossier")).text()
    assert NAME in page and PHONE in page

    assert (await client.post(url, json={"given": False}, headers=headers)).status == 200
    body = await (await client.get(f"/api/tickets/{ticket.id}/dossier.json")).text()
    assert PHONE not in body and NAME not in body
    log = [json.loads(x) for x in await redis.lrange(f"xb:handoff:dossier-consent-log:{ticket.id}", 0, -1)]
    assert [x["op"] for x in log] == ["given", "withdrawn"] and log[0]["by"] == reg_env["agent"]


async def test_an_unknown_ticket_is_404(reg_env):
    client = reg_env["client"]
    assert await login(client, reg_env["agent"])
    for path in ("/api/tickets/T-nope/dossier.json", "/tickets/T-nope/dossier", "/api/tickets/..%2F..%2Fetc/dossier.json"):
        assert (await client.get(path)).status == 404, path


async def test_the_printable_dossier_is_escaped_and_has_no_inline_script(reg_env):
    client, services = reg_env["client"], reg_env["services"]
    ticket, _ = await services.tickets.create(f"web:{uuid.uuid4().hex[:8]}", "complaint", "normal", "socketio",
                                              "<script>alert(1)</script>")
    assert await login(client, reg_env["agent"])
    response = await client.get(f"/tickets/{ticket.id}/dossier")
    html = await response.text()
    assert response.status == 200 and "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/regulators.js">']
    assert "打印 / 另存为PDF" in html and "消费者投诉材料" in html and "待补充" in html
    assert (await client.get("/static/regulators.js")).status == 200
    ticket_page = await (await client.get(f"/tickets/{reg_env['ticket'].id}")).text()
    assert "导出投诉材料（12315/消协）" in ticket_page


async def backdate(services, ticket, created: dt.datetime, claim_after=None, resolve_after=None, rating=None):
    """Moves a ticket into another month (its doc is fixed at creation), with claim/resolve times."""
    redis, key = services.redis, f"xb:handoff:ticket:{ticket.id}"
    doc = json.loads(await redis.hget(key, "doc"))
    doc.update(created_at=created.isoformat(), sla_due=(created + dt.timedelta(minutes=60)).isoformat())
    fields = {"doc": json.dumps(doc, ensure_ascii=False)}
    if claim_after is not None:
        fields.update(claimed_at=(created + claim_after).isoformat(), status="claimed")
    if resolve_after is not None:
        fields.update(resolved_at=(created + resolve_after).isoformat(), status="resolved")
    if rating is not None:
        fields["rating"] = str(rating)
    await redis.hset(key, mapping=fields)
    await redis.zrem("xb:handoff:queue", ticket.id)


async def test_the_monthly_report_counts_the_months_events_and_tickets(private_env, monkeypatch):
    monkeypatch.setattr(regulators, "XRANGE_PAGE", 2)  # the stream is read a page at a time
    reg_env = private_env
    client, services = reg_env["client"], reg_env["services"]
    redis = services.redis
    month = "2025-03"
    start, end = parse_month(month)
    in_month = [
        new_event("complaint", "quality", "web", at=start.timestamp() + 3600, sku="SKU-40001", merchant="m-shuma"),
        new_event("return", "quality", "web", at=start.timestamp() + 7200, sku="SKU-40001", merchant="m-shuma"),
        new_event("return", "no_reason", "wechat", at=start.timestamp() + 86400 * 3, sku="SKU-10001", merchant="m-huayi"),
        new_event("safety", "fire", "web", at=start.timestamp() + 86400 * 10, sku="SKU-40002", merchant="m-shuma"),
        new_event("rights_question", "seven_day_basic", "web", at=end.timestamp() - 60),
    ]
    entries = [(int(e.at * 1000), e.to_fields()) for e in in_month]
    entries.append((int(start.timestamp() * 1000) + 5, {"kind": "bogus"}))
    for outside in (start.timestamp() - 1, end.timestamp()):  # the last second before, the first after
        entries.append((int(outside * 1000), new_event("complaint", "quality", "web", at=outside).to_fields()))
    for ms, fields in sorted(entries, key=lambda e: e[0]):  # a stream takes ids in order only
        await redis.xadd(regulators.RISK_STREAM, fields, id=f"{ms}-0")

    made = []
    for n in range(3):
        ticket, _ = await services.tickets.create(f"web:{uuid.uuid4().hex[:8]}", "complaint" if n < 2 else "safety",
                                                  "normal", "socketio", "x")
        made.append(ticket)
    await backdate(services, made[0], start + dt.timedelta(days=2), dt.timedelta(minutes=10), dt.timedelta(hours=2), 5)
    await backdate(services, made[1], start + dt.timedelta(days=4), dt.timedelta(minutes=90), None, None)
    await backdate(services, made[2], start + dt.timedelta(days=6), dt.timedelta(minutes=20), dt.timedelta(hours=1), 1)

    csrf = await login(client, reg_env["supervisor"])
    assert csrf
    response = await client.get(f"/api/reports/monthly.json?month={month}")
    assert response.status == 200
    report = await response.json()
    assert report["month"] == month and report["generated_by"] == reg_env["supervisor"]
    assert report["events"]["total"] == 5 and report["events"]["skipped_malformed"] == 1
    kinds = {k["key"]: k["count"] for k in report["events"]["by_kind"]}
    assert kinds == {"complaint": 1, "return": 2, "safety": 1, "low_csat": 0, "rights_question": 1, "not_received": 0}
    assert {r["key"]: r["count"] for r in report["return_reasons"]} == {"quality": 1, "no_reason": 1}
    assert report["return_reasons"][0]["label"] in ("质量问题", "七天无理由")
    merchants = {m["merchant"]: m for m in report["by_merchant"]}
    assert merchants["m-shuma"]["total"] == 3 and merchants["m-shuma"]["safety"] == 1
    assert merchants["m-shuma"]["name"] == "数码先锋专营店" and merchants["m-huayi"]["return"] == 1
    assert report["safety"] == {"events": 1, "tickets": 1} and report["complaints"] == {"events": 1, "tickets": 2}
    assert len(report["daily"]) == 31 and sum(d["total"] for d in report["daily"]) == 5
    assert report["daily"][0]["complaint"] == 1 and report["daily"][-1]["rights_question"] == 1
    tickets = report["tickets"]
    assert tickets["total"] == 3 and tickets["claimed"] == 3 and tickets["resolved"] == 2
    assert tickets["claimed_within_sla"] == 2 and tickets["sla_breached"] == 1 and tickets["sla_rate"] == round(2 / 3, 4)
    assert tickets["median_claim_s"] == 20 * 60 and tickets["max_claim_s"] == 90 * 60
    assert report["csat"]["ratings"] == 2 and report["csat"]["mean"] == 3 and report["csat"]["low"] == 1

    page = await client.get(f"/reports/monthly?month={month}")
    html = await page.text()
    assert page.status == 200 and "<svg" in html and "数码先锋专营店" in html
    assert re.search(r'id="events-total">5<', html) and re.findall(r"<script[^>]*>", html) == [
        '<script src="/static/regulators.js">']


async def test_only_supervisors_get_the_report_and_the_month_is_checked(reg_env):
    client = reg_env["client"]
    assert await login(client, reg_env["agent"])
    assert (await client.get("/api/reports/monthly.json?month=2026-11")).status == 403
    assert (await client.get("/reports/monthly?month=2026-11")).status == 403

    supervisor = await reg_env["aiohttp_client"](reg_env["app"])
    assert await login(supervisor, reg_env["supervisor"])
    for month in ("../../etc", "2026-13", "2026-00", "x" * 5000, "2026-11%00", "%2e%2e%2f"):
        for path in ("/api/reports/monthly.json", "/reports/monthly"):
            response = await supervisor.get(f"{path}?month={month}")
            assert response.status == 400, (path, month)
            assert (await response.json()) == {"error": "month must be YYYY-MM"}
    assert (await supervisor.get("/api/reports/monthly.json")).status == 200  # this month by default


def test_event_tally_skips_nothing_it_cannot_place():
    start, end = parse_month("2026-11")
    tally = EventTally(start, end)
    tally.add(new_event("return", "quality", "web", at=start.timestamp(), merchant="m-x"))
    report = build_report("2026-11", tally, [], [], generated_by="sup")
    assert report["events"]["total"] == 1 and report["by_merchant"][0]["name"] == "m-x"
    assert report["tickets"]["sla_rate"] is None and report["csat"]["mean"] is None and report["top_risks"] == []


async def test_the_report_lists_the_months_alerts_and_what_was_done(private_env):
    from bot.risk.alerts import AlertStore
    from bot.risk.detector import Finding

    client, redis = private_env["client"], private_env["services"].redis
    alerts = AlertStore(redis)
    event = new_event("safety", "fire", "web", sku="SKU-40002", merchant="m-shuma")
    finding = Finding(key="merchant:m-shuma|safety:fire", dimension="merchant", value="m-shuma", kind="safety",
                      reason="fire", severity="urgent", observed=1, expected=0.0, ratio=0.0, window_h=24,
                      p_value=0.0, rule="一起起火报告，立即预警")
    alert = await alerts.record(finding, event, {"start": event.at, "bucket_s": 3600, "counts": [1],
                                                 "expected_per_bucket": 0.0})
    await alerts.add_note(alert.id, "sup", "已通知商家下架，顾客电话 13912345678")
    await alerts.resolve(alert.id, "sup", "商家已召回")

    assert await login(client, private_env["supervisor"])
    this_month = dt.datetime.now(SHANGHAI).strftime("%Y-%m")
    report = await (await client.get(f"/api/reports/monthly.json?month={this_month}")).json()
    [risk] = report["top_risks"]
    assert risk["id"] == alert.id and risk["severity_label"] == "紧急" and risk["safety"] is True
    assert risk["status"] == "resolved" and risk["resolved"]["by"] == "sup" and risk["name"] == "数码先锋专营店"
    assert [n["text"] for n in risk["notes"]][-1] == "商家已召回"
    assert "13912345678" not in json.dumps(report, ensure_ascii=False)
    earlier = await (await client.get("/api/reports/monthly.json?month=2025-01")).json()
    assert earlier["top_risks"] == []
    html = await (await client.get(f"/reports/monthly?month={this_month}")).text()
    assert "一起起火报告，立即预警" in html and "已解决" in html
