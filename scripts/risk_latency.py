"""The urgent-alert latency of `make risk-eval`, measured on the running stack.

Starts Redis (embedded unless REDIS_URL is set), the action server, the Rasa server and the web
app (console + its risk worker), as `make run` does. Then a logged-in demo shopper reports a safety
incident about one product of theirs through the REST channel, and the clock runs from sending
the message until the urgent alert for that product's SKU is in the alert store, where the
console's 风险预警 page gets it. One report per product, each in a fresh conversation; the median
is returned.

Run alone: `python scripts/risk_latency.py` prints each report's latency.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import List, Optional, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402

from bot.identity import sign_customer_token  # noqa: E402
from bot.model import ensure_trained  # noqa: E402
from bot.orders.demo import DEMO_CATALOGUE  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.stack import action_server, console_server, rasa_server, service_env  # noqa: E402
from tests.conftest import configured_or_embedded_redis, free_port  # noqa: E402

TOKEN = "risk-latency-" + uuid.uuid4().hex[:8]
SIGNING_SECRET = "risk-latency-signing-secret"
READY_TIMEOUT_S = 300
ALERT_TIMEOUT_S = 30.0
# Safety reports about products demo shopper c1001 bought, as a shopper would write them.
REPORTS: Tuple[Tuple[str, str], ...] = (
    ("智能电饭煲", "你好，我上个月买的智能电饭煲今天煮饭的时候突然冒烟，还闻到烧焦味，差点着火了，吓死我了"),
    ("护眼台灯", "护眼台灯插上电一摸开关就被电了一下，手到现在还麻，这是漏电吧？"),
    ("快充充电器", "快充充电器充电的时候突然冒烟起火了，桌子都烧黑了一块，现在还有股焦味"),
    ("降噪蓝牙耳机", "降噪蓝牙耳机戴了半小时耳朵就烫伤了，起了个泡，你们这个质量有问题吧"),
    ("保温杯", "保温杯装热水喝了以后孩子嘴巴烫伤了，盖子一拧就喷出来"),
)


async def _alert_for(redis, sku: str, since: float) -> Optional[float]:
    """When the first urgent or critical alert for `sku` appeared after `since`, or None."""
    from bot.risk.alerts import AlertStore

    for alert in await AlertStore(redis).list(limit=500):
        created = dt.datetime.fromisoformat(alert.created_at).timestamp()
        if alert.sku == sku and alert.severity in ("urgent", "critical") and created >= since - 1.0:
            return time.time()
    return None


async def _report_all(rasa_port: int, redis_url: str) -> List[float]:
    import redis.asyncio as aioredis

    redis = aioredis.Redis.from_url(redis_url)
    metadata = {"customer_token": sign_customer_token("c1001", SIGNING_SECRET)}
    latencies = []
    try:
        async with aiohttp.ClientSession() as session:
            for product, text in REPORTS:
                sku = DEMO_CATALOGUE[product][0]
                sender = f"risk-latency-{uuid.uuid4().hex[:8]}"
                started = time.time()
                body = {"sender": sender, "message": text, "metadata": metadata}
                post = asyncio.create_task(session.post(
                    f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook", json=body))
                seen = None
                while seen is None and time.time() - started < ALERT_TIMEOUT_S:
                    seen = await _alert_for(redis, sku, started)
                    if seen is None:
                        await asyncio.sleep(0.02)
                (await post).release()
                if seen is None:
                    print(f"  {product}: no urgent alert within {ALERT_TIMEOUT_S:.0f} s", flush=True)
                    latencies.append(float("inf"))
                else:
                    latencies.append(seen - started)
                    print(f"  {product}: urgent alert after {seen - started:.2f} s", flush=True)
    finally:
        await redis.close()
    return latencies


def measure() -> Optional[float]:
    """The median seconds from a shopper's safety report to its urgent alert, on the running stack."""
    settings = Settings.from_env()
    model = ensure_trained(settings)
    logs = Path(tempfile.mkdtemp(prefix="xiaobao-risk-latency-"))
    redis_url, redis = configured_or_embedded_redis(logs / "redis")
    action_port, rasa_port, web_port = free_port(), free_port(), free_port()
    env = {**service_env(redis_url, action_port), "STORE_SIGNING_SECRET": SIGNING_SECRET,
           "SENDER_MAX_PER_SECOND": "0", "RASA_URL": f"http://127.0.0.1:{rasa_port}", "RASA_API_TOKEN": TOKEN,
           "RASA_PUBLIC_URL": f"http://127.0.0.1:{rasa_port}", "XIAOBAO_VAR_DIR": str(logs / "var"),
           "BIND_HOST": "127.0.0.1"}
    processes = [
        action_server(action_port, env, output=open(logs / "actions.log", "ab")).start(),
        rasa_server(model, rasa_port, TOKEN, env, output=open(logs / "rasa.log", "ab")).start(),
        console_server(web_port, env, output=open(logs / "console.log", "ab")).start(),
    ]
    try:
        for process in processes:
            process.wait_ready(READY_TIMEOUT_S)
        print(f"urgent-alert latency on the running stack: {len(REPORTS)} safety reports (logs in {logs})", flush=True)
        latencies = asyncio.run(_report_all(rasa_port, redis_url))
    finally:
        for process in reversed(processes):
            process.stop()
        if redis is not None:
            redis.stop()
    return statistics.median(latencies) if latencies else None


if __name__ == "__main__":
    median = measure()
    print(f"median urgent-alert latency: {median:.2f} s" if median is not None else "no measurement")
