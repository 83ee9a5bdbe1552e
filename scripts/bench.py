"""`make bench`: one run, one table. NLU, knowledge base, end-to-end load against a bare-Rasa
baseline, cost growth over a long conversation, memory and start-up.

End to end means HTTP POSTs to the REST webhook (`/webhooks/rest/webhook`) from concurrent
simulated shoppers, each sending the next message as soon as the previous one is answered.

* full stack: the production configuration (endpoints.yml, credentials.yml): Redis event-log
  tracker store, Redis ticket lock store, the action server with the real actions, the polite
  channels and log masking.
* baseline: the same model under stock `rasa run` with no endpoints (in-memory tracker and lock
  stores, no action server) and Rasa's stock REST channel.

The two are measured alternately (full, baseline, full, baseline ...) in one run, so both see
the same machine. Figures are medians or percentiles from this one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
import psutil  # noqa: E402

from bot.identity import sign_customer_token  # noqa: E402
from bot.model import ensure_trained, rasa_command  # noqa: E402
from bot.paths import ROOT  # noqa: E402
from bot.redis_server import EmbeddedRedis  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.stack import ManagedProcess, action_server, rasa_server, service_env  # noqa: E402
from scripts import bench_kb, bench_nlu  # noqa: E402
from tests.conftest import free_port  # noqa: E402

SIGNING_SECRET = "bench-signing-secret"
TOKEN = "bench-api-token"
READY_TIMEOUT_S = 300
# What one shopper says, in a loop: greetings, rights questions (answered by a custom action from
# the knowledge base), an order lookup (custom action against the order store), thanks.
SCRIPT = [
    "你好",
    "七天无理由退货从哪天开始算？",
    "买到假货能退一赔三吗",
    "帮我查下订单",
    "手机用了一个月坏了，三包怎么算",
    "谢谢",
    "网购时个人信息保护有哪些规定",
    "好的，再见",
]
CONCURRENCY = (1, 8, 32)
MESSAGES_PER_SHOPPER = {1: 40, 8: 20, 32: 10}
LONG_TURNS = 205
WINDOW = 5  # turn N latency = median of turns N-5 .. N+5


def percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@dataclass
class Server:
    name: str
    port: int
    processes: Dict[str, ManagedProcess] = field(default_factory=dict)
    ready_s: float = 0.0
    peak_rss: Dict[str, int] = field(default_factory=dict)

    @property
    def webhook(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/rest/webhook"

    def sample_rss(self) -> None:
        for label, process in self.processes.items():
            if process.running():
                rss = _tree_rss(process.process.pid)
                self.peak_rss[label] = max(self.peak_rss.get(label, 0), rss)


def _tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    except psutil.Error:
        return 0


def start_full_stack(model: Path, redis_url: str, logs: Path) -> Server:
    server = Server("full stack", free_port())
    action_port = free_port()
    # The simulated shoppers send each message as soon as the last is answered, faster than the
    # per-sender flood limit allows a person to; the limit is switched off to measure the stack.
    env = {**service_env(redis_url, action_port), "STORE_SIGNING_SECRET": SIGNING_SECRET,
           "WECHAT_TOKEN": "bench", "WECHAT_APPID": "wxbench", "WECHAT_SECRET": "bench",
           "SENDER_MAX_PER_SECOND": "0"}
    started = time.monotonic()
    server.processes["action server"] = action_server(action_port, env, output=open(logs / "actions.log", "ab")).start()
    server.processes["rasa (full stack)"] = rasa_server(model, server.port, TOKEN, env,
                                                      output=open(logs / "rasa-full.log", "ab")).start()
    for process in server.processes.values():
        process.wait_ready(READY_TIMEOUT_S)
    server.ready_s = time.monotonic() - started
    return server


def start_baseline(model: Path, logs: Path) -> Server:
    server = Server("bare Rasa", free_port())
    (logs / "endpoints-none.yml").write_text("# no tracker store, lock store or action server\n{}\n")
    (logs / "credentials-rest.yml").write_text("rest:\n")
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.monotonic()
    server.processes["rasa (baseline)"] = rasa_server(
        model, server.port, TOKEN, env, endpoints=str(logs / "endpoints-none.yml"),
        credentials=str(logs / "credentials-rest.yml"), output=open(logs / "rasa-baseline.log", "ab")).start()
    server.processes["rasa (baseline)"].wait_ready(READY_TIMEOUT_S)
    server.ready_s = time.monotonic() - started
    return server


@dataclass
class LoadResult:
    latencies_ms: List[float]
    seconds: float
    errors: int
    silent: int

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.seconds


async def shopper(session: aiohttp.ClientSession, url: str, sender: str, messages: int,
                  latencies: List[float], counters: Dict[str, int], offset: int = 0) -> None:
    metadata = {"customer_token": sign_customer_token("c1001", SIGNING_SECRET)}
    for turn in range(messages):
        body = {"sender": sender, "message": SCRIPT[(turn + offset) % len(SCRIPT)], "metadata": metadata}
        started = time.perf_counter()
        try:
            async with session.post(url, json=body) as response:
                replies = await response.json(content_type=None)
                if response.status != 200:
                    counters["errors"] += 1
                elif not replies:
                    counters["silent"] += 1
        except (aiohttp.ClientError, asyncio.TimeoutError, json.JSONDecodeError):
            counters["errors"] += 1
        latencies.append((time.perf_counter() - started) * 1000)


async def load(server: Server, concurrency: int, run_id: str) -> LoadResult:
    latencies: List[float] = []
    counters = {"errors": 0, "silent": 0}
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=concurrency + 4)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(
            shopper(session, server.webhook, f"bench-{run_id}-{concurrency}-{i}", MESSAGES_PER_SHOPPER[concurrency],
                    latencies, counters, offset=i)
            for i in range(concurrency)
        ))
        seconds = time.perf_counter() - started
    return LoadResult(latencies, seconds, counters["errors"], counters["silent"])


async def long_conversation(server: Server, run_id: str) -> List[float]:
    latencies: List[float] = []
    counters = {"errors": 0, "silent": 0}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        await shopper(session, server.webhook, f"bench-long-{run_id}", LONG_TURNS, latencies, counters)
    return latencies


def turn_latency(latencies: List[float], turn: int) -> float:
    return statistics.median(latencies[turn - 1 - WINDOW: turn + WINDOW])


def measure_training(logs: Path) -> float:
    """Trains a model from scratch (empty cache) into a temporary directory; returns seconds."""
    out = logs / "train"
    env = {**os.environ, "RASA_CACHE_DIRECTORY": str(logs / "train-cache"), "TF_CPP_MIN_LOG_LEVEL": "2",
           "RASA_TELEMETRY_ENABLED": "false"}
    started = time.monotonic()
    subprocess.run(rasa_command("train", "--config", "config.yml", "--domain", "domain", "--data", "data",
                                "--out", str(out)), cwd=ROOT, env=env, check=True,
                   stdout=open(logs / "train.log", "ab"), stderr=subprocess.STDOUT)
    return time.monotonic() - started


def nlu_figures(model: Path) -> Tuple[float, float, float]:
    from sklearn.metrics import f1_score

    examples = bench_nlu.load_heldout()
    results, latencies = asyncio.run(bench_nlu.parse_all(model, [e["text"] for e in examples]))
    gold = [e["intent"] for e in examples]
    pred = [r["intent"]["name"] for r in results]
    macro_f1 = f1_score(gold, pred, labels=sorted(set(gold)), average="macro", zero_division=0)
    return macro_f1, statistics.median(latencies), percentile(latencies, 0.95)


class RssSampler(threading.Thread):
    def __init__(self, servers: List[Server], extra: Dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.servers, self.extra, self.peak = servers, extra, {}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            for server in self.servers:
                server.sample_rss()
            for label, pid in self.extra.items():
                self.peak[label] = max(self.peak.get(label, 0), _tree_rss(pid))


def redis_storage(url: str, sender: str) -> Tuple[int, int]:
    """Bytes Redis uses for one conversation's events, and how many events that is."""
    import redis as redis_lib

    client = redis_lib.Redis.from_url(url)
    key = f"xiaobao:events:{{{sender}}}"
    return int(client.memory_usage(key, samples=0) or 0), int(client.llen(key))


def row(label: str, value: str, target: str = "", ok: Optional[bool] = None) -> str:
    verdict = "" if ok is None else ("PASS" if ok else "MISS")
    return f"| {label} | {value} | {target} | {verdict} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-training", action="store_true", help="do not time a training from scratch")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    logs = Path(tempfile.mkdtemp(prefix="xiaobao-bench-"))
    model = ensure_trained(Settings.from_env())
    lines: List[str] = []

    print("NLU ...", flush=True)
    macro_f1, nlu_p50, nlu_p95 = nlu_figures(model)
    print("knowledge base ...", flush=True)
    kb = bench_kb.evaluate()

    train_s = None
    if not args.skip_training:
        print("training from scratch (empty cache) ...", flush=True)
        train_s = measure_training(logs)

    redis = EmbeddedRedis(free_port(), logs / "redis").start()
    servers: List[Server] = []
    try:
        print("starting the full stack ...", flush=True)
        full = start_full_stack(model, redis.url, logs)
        servers.append(full)
        print(f"  ready in {full.ready_s:.1f} s; starting the bare-Rasa baseline ...", flush=True)
        base = start_baseline(model, logs)
        servers.append(base)
        print(f"  ready in {base.ready_s:.1f} s", flush=True)
        sampler = RssSampler(servers, {"redis-server": redis.process.pid})
        sampler.start()

        run_id = str(int(time.time()))
        for server in (full, base):  # warm-up: first requests build lazy state
            asyncio.run(load(server, 8, f"warm-{run_id}"))
        results: Dict[Tuple[str, int], LoadResult] = {}
        for concurrency in CONCURRENCY:
            for server in (full, base):
                print(f"load: {server.name}, {concurrency} concurrent ...", flush=True)
                results[(server.name, concurrency)] = asyncio.run(load(server, concurrency, run_id))
        long_runs = {}
        for server in (full, base):
            print(f"long conversation: {server.name}, {LONG_TURNS} turns ...", flush=True)
            long_runs[server.name] = asyncio.run(long_conversation(server, run_id))
        sampler.stopped.set()
        sampler.join()
        storage = redis_storage(redis.url, f"bench-long-{run_id}")
        for server in servers:
            server.sample_rss()
    finally:
        for server in servers:
            for process in server.processes.values():
                process.stop()
        redis.stop()

    lines.append("| Figure | Value | Target | |")
    lines.append("|---|---|---|---|")
    lines.append(row("NLU intent macro-F1 (held-out)", f"{macro_f1:.3f}"))
    lines.append(row("NLU parse latency p50 / p95", f"{nlu_p50:.1f} / {nlu_p95:.1f} ms"))
    lines.append(row("KB hit@1 / hit@3 / MRR", f"{kb['hit1']:.3f} / {kb['hit3']:.3f} / {kb['mrr']:.3f}"))
    lines.append(row("KB query latency p50 / p95", f"{kb['p50_ms']:.2f} / {kb['p95_ms']:.2f} ms"))
    for concurrency in CONCURRENCY:
        f, b = results[(full.name, concurrency)], results[(base.name, concurrency)]
        ratio = f.throughput / b.throughput
        lines.append(row(f"msgs/s at {concurrency} concurrent: full / bare (ratio)",
                         f"{f.throughput:.1f} / {b.throughput:.1f} ({ratio:.2f}×)",
                         "≥ 0.9× bare" if concurrency == 32 else "", ratio >= 0.9 if concurrency == 32 else None))
        p95, bare_p95 = percentile(f.latencies_ms, 0.95), percentile(b.latencies_ms, 0.95)
        lines.append(row(f"latency at {concurrency} concurrent, full p50 / p95 (bare p50 / p95)",
                         f"{statistics.median(f.latencies_ms):.0f} / {p95:.0f} ms "
                         f"({statistics.median(b.latencies_ms):.0f} / {bare_p95:.0f} ms)",
                         "p95 ≤ bare's" if concurrency == 8 else "", p95 <= bare_p95 if concurrency == 8 else None))
        if f.errors or f.silent or b.errors:
            lines.append(row(f"failed / silent replies at {concurrency}", f"full {f.errors} / {f.silent}, bare {b.errors}"))
    for server in (full, base):
        lat = long_runs[server.name]
        growth = turn_latency(lat, 200) / turn_latency(lat, 10)
        is_full = server is full
        lines.append(row(f"turn 200 / turn 10 latency, {server.name}",
                         f"{turn_latency(lat, 200):.0f} / {turn_latency(lat, 10):.0f} ms = {growth:.2f}",
                         "≤ 1.5" if is_full else "", growth <= 1.5 if is_full else None))
    for server in servers:
        for label, rss in server.peak_rss.items():
            is_rasa = label.startswith("rasa")
            lines.append(row(f"peak RSS {label}", f"{rss / 2**20:.0f} MB", "≤ 1.2 GB" if is_rasa else "",
                             rss <= 1.2 * 2**30 if is_rasa else None))
    for label, rss in sampler.peak.items():
        lines.append(row(f"peak RSS {label}", f"{rss / 2**20:.0f} MB"))
    used, events = storage
    lines.append(row(f"Redis per conversation ({LONG_TURNS} turns, {events} events)",
                     f"{used / 1024:.0f} KB ({used / max(1, events):.0f} bytes per event)"))
    if train_s is not None:
        lines.append(row("training from scratch", f"{train_s:.0f} s"))
    lines.append(row("start to ready, full stack (actions + Rasa)", f"{full.ready_s:.1f} s", "≤ 40 s", full.ready_s <= 40))
    lines.append(row("start to ready, bare Rasa", f"{base.ready_s:.1f} s"))

    print(f"\nxiaobao benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GB\n")
    print("\n".join(lines))
    if args.keep_logs:
        print(f"\nlogs in {logs}")
    else:
        shutil.rmtree(logs, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
