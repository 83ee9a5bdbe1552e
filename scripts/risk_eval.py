"""`make risk-eval`: how well the risk detector finds incidents, and how often it cries wolf.

Replays 60 simulated days of rights signals through the same pure functions the risk worker uses
(`series_keys`, `totals_key`, `assess_trend`). Like the worker, it keeps hourly counts per key and
per kind in memory and assesses a key when an event touches it; here once per key and hour, at
the key's last event of that hour, with the counts as they stand at that moment (earlier events
of the same hour see fewer events, so this can only detect later, never earlier, than the worker).

The simulated store (a model, documented so the figures can be judged):
- 400 SKUs with Zipf-like popularity, 30 merchants of uneven size, 12 categories; each category
  has its own mix of return reasons (clothes: 七天无理由, appliances: 质量问题 ...).
- All event kinds: returns, complaints, low CSAT, rights questions (30 % tied to an order),
  delivered-not-received, and rare safety reports.
- A weekly rhythm (Mondays busiest), a daily rhythm (quiet at night, peaks late morning and
  evening), day-to-day noise per SKU (±20 %) and per merchant (±10 %).
- Promotions from a calendar in the format of knowledge/promotions.yml — by default that very file,
  whose 2026 dates cover the simulated days (秋季焕新 10-16 in the warm-up; 双11 开门红 10-31..11-01
  and 双11 11-10..11-12 at 4x on 11-11; the first day of 双12 on the last simulated day). A day
  runs at the entry's planned_volume, a peak day at its peak_volume. Each kind follows sales with
  its own lag (questions and complaints on the day, not-received after 3-6 days, returns after
  3-10 days; the calendar's aftermath_days say the same); promoted SKUs (one in eight) take up to
  1.6x their usual share of a kind while it surges, so a promotion is not perfectly uniform. The
  detector gets the same calendar (Thresholds.promotions) and leaves those days out of its
  baselines, as the worker does; --detector-ignores-calendar shows it without.
- Injected incidents on SKU×reason and merchant×reason keys: the key's rate multiplied by 2, 3,
  5 or 10 for 1-4 days, starting at a random hour after the warm-up, at most one per merchant ×
  kind × reason within a baseline period (an incident inflates the baseline it sits in). Only
  keys with a baseline of at least MIN_BASELINE_PER_DAY (20) events a day at normal volume get
  incidents counted in D/N. Below that a 3x day is a few dozen events or fewer, and with
  day-to-day noise of ±20 % no test at about one false alarm a week over ~9,000 keys finds every
  one within 24 hours; incidents on 8-20 and 2-8 events/day keys are replayed and shown apart.

A false alarm is an alert episode (first finding on a key after 24 quiet hours, as one live
alert per key would show) on a key that no injected incident touched in the preceding window.
Alarms are counted after the warm-up (baseline + longest window); those on promotion days
(the surge and its aftermath) are shown separately and left out of the per-week figure.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import datetime as dt
import math
import random
import statistics
import sys
import time
from array import array
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.risk.detector import (  # noqa: E402
    PromotionCalendar, SeriesKey, Thresholds, assess_trend, load_thresholds, series_keys, totals_key,
)
from bot.risk.events import KINDS, SAFETY, RiskEvent  # noqa: E402

DEFAULT_SEED = 15
DAYS = 60
START = dt.datetime(2026, 10, 12)  # a Monday; 秋季大促 falls in the warm-up, 双11 after it
N_SKUS, N_MERCHANTS = 400, 30
MIN_BASELINE_PER_DAY = 20.0
SIZES = (2.0, 3.0, 5.0, 10.0)
INCIDENTS_PER_SIZE = 8  # on keys at or above the minimum baseline: these make D/N
INFO_INCIDENTS_PER_SIZE = 3  # per smaller band, reported apart, for information
EPISODE_GAP_H = 24

CATEGORIES = ("服装鞋包", "数码电子", "家用电器", "美妆个护", "食品生鲜", "母婴用品", "家居日用", "运动户外",
              "图书音像", "玩具乐器", "宠物用品", "珠宝配饰")
# Events a day at normal volume, by kind (a mid-sized store).
DAILY = {"return": 1800.0, "complaint": 300.0, "low_csat": 120.0, "rights_question": 400.0, "not_received": 150.0,
         SAFETY: 0.3}
RETURN_REASONS = ("no_reason", "quality", "wrong_item", "missing_part", "transit_damage", "not_as_described", "other")
RETURN_MIX = {  # by category; the rest use DEFAULT_RETURN_MIX
    "服装鞋包": (55, 12, 6, 2, 2, 20, 3), "数码电子": (25, 35, 6, 8, 10, 12, 4), "家用电器": (20, 40, 4, 8, 14, 10, 4),
    "食品生鲜": (5, 40, 8, 10, 27, 6, 4), "美妆个护": (35, 20, 8, 4, 8, 20, 5),
}
DEFAULT_RETURN_MIX = (35, 25, 7, 6, 9, 14, 4)
REASONS = {
    "complaint": (("quality", 30), ("delivery_delay", 25), ("attitude", 15), ("false_ad", 12), ("counterfeit", 6),
                  ("price", 12)),
    "low_csat": (("complaint", 45), ("human_request", 35), ("bot_failed", 20)),
    "rights_question": (("no_reason_return", 35), ("refund_time", 25), ("warranty", 15), ("fake_compensation", 10),
                        ("price_protection", 15)),
    "not_received": (("delivered_not_received", 1),),
    SAFETY: (("injury", 3), ("fire", 2), ("shock", 2), ("poisoning", 1)),
}
WEEKDAY = (1.15, 1.05, 1.0, 0.95, 0.9, 0.92, 1.03)  # Monday first
HOURLY = (0.25, 0.15, 0.1, 0.08, 0.08, 0.12, 0.25, 0.5, 0.9, 1.3, 1.5, 1.45, 1.25, 1.3, 1.35, 1.3, 1.2, 1.1, 1.05,
          1.2, 1.45, 1.55, 1.3, 0.75)
# The lags (days) with which each kind follows sales (promotions come from the calendar).
LAGS = {"return": range(3, 11), "not_received": range(3, 7), "complaint": range(0, 3), "rights_question": range(0, 2),
        "low_csat": range(0, 4), SAFETY: range(2, 10)}
PROMOTED_SHARE_BOOST = 1.6


@dataclass
class Store:
    sku_category: List[str]
    sku_merchant: List[str]
    sku_weight: List[float]
    promoted: Set[int]


@dataclass
class Incident:
    dimension: str  # sku | merchant
    value: str
    kind: str
    reason: str
    size: float
    start_h: int
    end_h: int
    baseline_per_day: float
    counted: bool  # baseline >= the minimum baseline: part of D/N
    skus: Tuple[int, ...] = ()
    detected_h: Optional[float] = None
    touched: Set[SeriesKey] = field(default_factory=set)

    @property
    def key(self) -> SeriesKey:
        return SeriesKey(self.dimension, self.value, self.kind, self.reason)


def build_store(rng: random.Random) -> Store:
    merchant_size = [1.0 / (i + 1) ** 0.6 for i in range(N_MERCHANTS)]
    merchant_cats = [rng.sample(CATEGORIES, rng.choice((1, 1, 2))) for _ in range(N_MERCHANTS)]
    sku_merchant, sku_category = [], []
    for _ in range(N_SKUS):
        m = rng.choices(range(N_MERCHANTS), weights=merchant_size)[0]
        sku_merchant.append(f"m{m + 1:02d}")
        sku_category.append(rng.choice(merchant_cats[m]))
    ranks = list(range(1, N_SKUS + 1))
    rng.shuffle(ranks)
    sku_weight = [1.0 / r ** 0.9 for r in ranks]
    promoted = set(rng.sample(range(N_SKUS), N_SKUS // 8))
    return Store(sku_category, sku_merchant, sku_weight, promoted)


def sales_multiplier(calendar: PromotionCalendar, day: dt.date) -> float:
    """A day's sales against a normal day: the planned volume of the promotion on it, if any."""
    return max([1.0] + [p.peak_volume if day in p.peaks else p.planned_volume
                        for p in calendar.promotions if p.start <= day <= p.end])


def kind_multiplier(calendar: PromotionCalendar, kind: str, day: dt.date) -> float:
    """How much above normal a kind runs on a day: the mean excess of sales over its lags."""
    lags = LAGS[kind]
    excess = sum(sales_multiplier(calendar, day - dt.timedelta(days=lag)) - 1.0 for lag in lags)
    return 1.0 + excess / len(lags) * 1.5


def reason_table(kind: str, category: str) -> Tuple[Tuple[str, ...], List[float]]:
    if kind == "return":
        return RETURN_REASONS, list(RETURN_MIX.get(category, DEFAULT_RETURN_MIX))
    names, weights = zip(*REASONS[kind])
    return names, list(weights)


def reason_share(kind: str, category: str, reason: str) -> float:
    names, weights = reason_table(kind, category)
    return weights[names.index(reason)] / sum(weights) if reason in names else 0.0


def normal_rate_per_day(store: Store, skus: Sequence[int], kind: str, reason: str) -> float:
    """The mean events a day on these SKUs for kind × reason at normal volume (no promotion)."""
    total = sum(store.sku_weight)
    share = 0.0
    for s in skus:
        share += store.sku_weight[s] / total * reason_share(kind, store.sku_category[s], reason)
    tied = 0.3 if kind == "rights_question" else 1.0
    return DAILY[kind] * tied * share


def incident_bands(min_baseline: float) -> List[Tuple[float, float]]:
    """Baseline bands (events/day) for incidents: the counted one first, then two smaller ones."""
    return [(min_baseline, math.inf), (min_baseline / 2.5, min_baseline), (2.0, min_baseline / 2.5)]


def plan_incidents(store: Store, rng: random.Random, th: Thresholds, min_baseline: float) -> List[Incident]:
    """Incidents of each size on SKU×reason and merchant×reason keys, never two on one key at once."""
    merchants = sorted(set(store.sku_merchant))
    candidates = []
    for kind, reasons in (("return", ("quality", "not_as_described", "wrong_item", "transit_damage", "missing_part")),
                          ("complaint", ("quality", "counterfeit", "false_ad", "delivery_delay")),
                          ("not_received", ("delivered_not_received",))):
        for reason in reasons:
            for s in range(N_SKUS):
                candidates.append(("sku", f"SKU-{s:04d}", kind, reason, (s,)))
            for m in merchants:
                skus = tuple(i for i, x in enumerate(store.sku_merchant) if x == m)
                candidates.append(("merchant", m, kind, reason, skus))
    rated = [(c, normal_rate_per_day(store, c[4], c[2], c[3])) for c in candidates]
    first, last = th.history_hours, DAYS * 24 - 24 * 2
    incidents: List[Incident] = []

    def family(dim: str, value: str, kind: str, reason: str) -> Tuple[str, str, str]:
        merchant = store.sku_merchant[int(value[4:])] if dim == "sku" else value
        return merchant, kind, reason

    def add(pool, size: float, counted: bool, dimension: str) -> None:
        pool = [c for c in pool if c[0][0] == dimension] or pool
        for _ in range(500):
            (dim, value, kind, reason, skus), rate = rng.choice(pool)
            start = rng.randrange(first, last)
            end = min(start + rng.randrange(24, 97), DAYS * 24)
            # An incident stays in its merchant's baseline for baseline_hours: keep the next one
            # on the same merchant × kind × reason out of it, so each is measured on a clean baseline.
            clash = any(family(i.dimension, i.value, i.kind, i.reason) == family(dim, value, kind, reason)
                        and start < i.end_h + th.history_hours and i.start_h < end + th.history_hours
                        for i in incidents)
            if not clash:
                incidents.append(Incident(dim, value, kind, reason, size, start, end, rate, counted, skus))
                return

    for low, high in incident_bands(min_baseline):
        pool = [c for c in rated if low <= c[1] < high]
        counted = low >= min_baseline
        for n in range(INCIDENTS_PER_SIZE if counted else INFO_INCIDENTS_PER_SIZE):
            for size in SIZES:  # sizes interleaved, so a crowded band short-changes none of them
                add(pool, size, counted, "sku" if n % 2 == 0 else "merchant")
    return incidents


class Replay:
    """Hourly counts in memory, as the worker keeps them in Redis, and the findings they give."""

    def __init__(self, th: Thresholds):
        self.th = th
        self.hours = DAYS * 24
        # What the worker derives from its bucket times and the calendar, here from the simulated days.
        self.excluded = {kind: [th.promotions.on_promotion(kind, day_of(h)) for h in range(self.hours)]
                         for kind in KINDS}
        self.counts: Dict[SeriesKey, array] = {}
        self.totals = {totals_key(kind): array("i", bytes(4 * self.hours)) for kind in KINDS}
        self.findings: List[Tuple[int, float, SeriesKey]] = []  # (hour, time, key)
        self.checks = 0
        self.events_by_kind: Dict[str, int] = defaultdict(int)

    def series(self, key: SeriesKey) -> array:
        counts = self.counts.get(key)
        if counts is None:
            counts = self.counts[key] = array("i", bytes(4 * self.hours))
        return counts

    def run_hour(self, h: int, events: List[RiskEvent]) -> None:
        last_seen: Dict[SeriesKey, Tuple[float, str, int]] = {}
        for event in sorted(events, key=lambda e: e.at):
            self.events_by_kind[event.kind] += 1
            total = self.totals[totals_key(event.kind)]
            total[h] += 1
            if event.kind == SAFETY:
                continue  # safety reports go to assess_safety at once (urgent latency below), not to a trend
            for key in series_keys(event):
                self.series(key)[h] += 1
                last_seen[key] = (event.at, event.kind, total[h])
        if h + 1 < self.th.history_hours:
            return
        lo = h + 1 - self.th.history_hours
        for key, (at, kind, total_then) in last_seen.items():
            totals = self.totals[totals_key(kind)][lo:h + 1]
            totals[-1] = total_then
            self.checks += 1
            if assess_trend(key, self.series(key)[lo:h + 1], totals, self.th, self.excluded[kind][lo:h + 1]):
                self.findings.append((h, at, key))


def day_of(h: int) -> dt.date:
    return (START + dt.timedelta(hours=h)).date()


def simulate(seed: int, th: Thresholds, min_baseline: float, calendar: PromotionCalendar,
             ) -> Tuple[Replay, List[Incident], Set[dt.date]]:
    """The simulated store sells by `calendar`; the detector knows what `th.promotions` says."""
    rng = random.Random(seed)
    store = build_store(rng)
    incidents = plan_incidents(store, rng, th, min_baseline)
    replay = Replay(th)
    merchant_of = store.sku_merchant
    days = [START.date() + dt.timedelta(days=d) for d in range(DAYS)]
    kind_mult = {kind: [kind_multiplier(calendar, kind, d) for d in days] for kind in DAILY}
    promo_days = {d for i, d in enumerate(days) if any(kind_mult[k][i] > 1.1 for k in DAILY)}
    tables = {(kind, cat): reason_table(kind, cat) for kind in DAILY for cat in CATEGORIES}
    cum_tables = {k: (names, _cumulative(w)) for k, (names, w) in tables.items()}
    for d, day in enumerate(days):
        sku_noise = [rng.gammavariate(25.0, 1 / 25.0) for _ in range(N_SKUS)]
        merchant_noise = {m: rng.gammavariate(100.0, 1 / 100.0) for m in sorted(set(merchant_of))}
        noisy = [store.sku_weight[s] * sku_noise[s] * merchant_noise[merchant_of[s]] for s in range(N_SKUS)]
        weights = {kind: _promoted(noisy, store, kind_mult[kind][d]) for kind in DAILY}
        cum_weights = {kind: _cumulative(w) for kind, w in weights.items()}
        for hour in range(24):
            h = d * 24 + hour
            base = START.timestamp() + h * 3600
            events = []
            for kind, per_day in DAILY.items():
                rate = per_day * WEEKDAY[day.weekday()] * HOURLY[hour] / 24 * kind_mult[kind][d]
                for _ in range(_poisson(rng, rate)):
                    sku = bisect.bisect(cum_weights[kind], rng.random() * cum_weights[kind][-1])
                    tied = kind != "rights_question" or rng.random() < 0.3
                    events.append(_event(rng, kind, base, sku if tied else None, store, cum_tables))
            for incident in incidents:
                if incident.start_h <= h < incident.end_h:
                    events.extend(_incident_events(rng, incident, day, hour, kind_mult[incident.kind][d], base,
                                                   weights[incident.kind], store))
            replay.run_hour(h, events)
    return replay, incidents, promo_days


def _promoted(weights: Sequence[float], store: Store, kind_mult: float) -> List[float]:
    """SKU weights for a kind on a day: its promotional surge comes more from the promoted SKUs."""
    boost = 1.0 + (PROMOTED_SHARE_BOOST - 1.0) * min(1.0, kind_mult - 1.0)
    return [w * boost if s in store.promoted else w for s, w in enumerate(weights)]


def _cumulative(weights: Sequence[float]) -> List[float]:
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return out


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth for small means, normal approximation above 50)."""
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _event(rng: random.Random, kind: str, base: float, sku: Optional[int], store: Store, cum_tables,
           reason: Optional[str] = None) -> RiskEvent:
    category = store.sku_category[sku] if sku is not None else None
    if reason is None:
        names, cum = cum_tables[(kind, category or CATEGORIES[0])]
        reason = names[bisect.bisect(cum, rng.random() * cum[-1])]
    return RiskEvent(id=f"{base:.0f}-{rng.getrandbits(48):x}", kind=kind, at=base + rng.random() * 3600,
                     channel=rng.choice(("web", "wechat", "wechat", "rest")), reason=reason,
                     sku=f"SKU-{sku:04d}" if sku is not None else None, category=category,
                     merchant=store.sku_merchant[sku] if sku is not None else None)


def _incident_events(rng: random.Random, incident: Incident, day: dt.date, hour: int, kind_mult: float,
                     base: float, weights: Sequence[float], store: Store) -> List[RiskEvent]:
    """The extra events of an incident this hour: (size - 1) x the key's own rate at this hour."""
    total = sum(weights)
    share = sum(weights[s] / total * reason_share(incident.kind, store.sku_category[s], incident.reason)
                for s in incident.skus)
    rate = DAILY[incident.kind] * share * WEEKDAY[day.weekday()] * HOURLY[hour] / 24 * kind_mult
    out = []
    skus = list(incident.skus)
    sku_w = [weights[s] * reason_share(incident.kind, store.sku_category[s], incident.reason) for s in skus]
    for _ in range(_poisson(rng, rate * (incident.size - 1.0))):
        sku = rng.choices(skus, weights=sku_w)[0]
        event = _event(rng, incident.kind, base, sku, store, None, reason=incident.reason)
        incident.touched.update(series_keys(event))
        out.append(event)
    return out


def score(replay: Replay, incidents: List[Incident], promo_days: Set[dt.date], th: Thresholds):
    """Detections per incident; false-alarm episodes on normal and promotion days."""
    longest = max(th.windows_h)
    by_key = defaultdict(list)
    for h, at, key in replay.findings:
        by_key[key].append((h, at))
    for incident in incidents:
        start_ts = START.timestamp() + incident.start_h * 3600
        hits = [at for h, at in by_key.get(incident.key, []) if h >= incident.start_h]
        if hits:
            incident.detected_h = (min(hits) - start_ts) / 3600
    false_normal, false_promo = [], []
    for key, hits in by_key.items():
        last = None
        for h, at in hits:
            new_episode = last is None or h - last > EPISODE_GAP_H
            last = h
            if not new_episode:
                continue
            explained = any(key in i.touched and i.start_h <= h < i.end_h + longest for i in incidents)
            if not explained:
                (false_promo if day_of(h) in promo_days else false_normal).append((h, key))
    return false_normal, false_promo


def urgent_alert_latency() -> Optional[float]:
    """Median seconds from a safety report to its urgent alert on the running stack, or None."""
    try:
        from scripts.risk_latency import measure
    except ImportError:
        return None
    return measure()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--no-stack", action="store_true", help="skip the urgent-alert latency on the running stack")
    parser.add_argument("--thresholds", type=Path, default=None, help="another thresholds file to try")
    parser.add_argument("--show-false", action="store_true", help="list the false alarms")
    parser.add_argument("--min-baseline", type=float, default=MIN_BASELINE_PER_DAY,
                        help="smallest baseline (events/day) of a key whose incidents count in D/N")
    parser.add_argument("--promotions", type=Path, default=None,
                        help="another promotion calendar (format of knowledge/promotions.yml) for store and detector")
    parser.add_argument("--detector-ignores-calendar", action="store_true",
                        help="the store still sells by the calendar, the detector does not leave promotions out")
    parser.add_argument("--seeds", type=_seed_range, default=None, metavar="A-B",
                        help="first one line per seed A..B and their total, then the usual output of --seed")
    args = parser.parse_args(argv)
    th = load_thresholds(args.thresholds, args.promotions)
    calendar = th.promotions
    if args.detector_ignores_calendar:
        th = dataclasses.replace(th, promotions=PromotionCalendar())
    if args.seeds:
        print_seeds(args.seeds, th, args.min_baseline, calendar)
    began = time.monotonic()
    replay, incidents, promo_days = simulate(args.seed, th, args.min_baseline, calendar)
    false_normal, false_promo = score(replay, incidents, promo_days, th)
    elapsed = time.monotonic() - began
    report(args, th, replay, incidents, promo_days, false_normal, false_promo, elapsed)
    latency = None
    if args.no_stack:
        print("urgent alert latency: skipped (--no-stack)")
    else:
        try:
            latency = urgent_alert_latency()
        except Exception as error:  # a benchmark reports, it does not crash: the stack may not start here
            print(f"urgent alert latency: the running stack failed ({type(error).__name__}: {error})")
            latency = None
        if latency is None:
            print("urgent alert latency: n/a (scripts/risk_latency.py could not measure it on the running stack)")
        else:
            print(f"urgent alert latency: median {latency:.2f} s from a shopper's safety report to the urgent alert "
                  "(target: within 5 s)")
    found, counted = _detected(incidents)
    weeks = _normal_weeks(th, promo_days)
    latency_text = "n/a" if latency is None else f"{latency:.2f}"
    print(f"risk-eval: detected {found}/{counted} incidents of at least 3x within 24h; "
          f"false alarms per week {len(false_normal) / weeks:.2f}; urgent alert latency {latency_text} s")
    return 0


def _seed_range(text: str) -> range:
    first, _, last = text.partition("-")
    try:
        seeds = range(int(first), int(last or first) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError("seeds are A-B, e.g. 1-6") from None
    if not seeds:
        raise argparse.ArgumentTypeError("seeds A-B need A <= B")
    return seeds


def _detected(incidents: List[Incident]) -> Tuple[int, int]:
    """Counted incidents of at least 3x found within 24 h, and how many there were."""
    counted = [i for i in incidents if i.counted and i.size >= 3]
    return sum(1 for i in counted if i.detected_h is not None and i.detected_h <= 24), len(counted)


def print_seeds(seeds: range, th: Thresholds, min_baseline: float, calendar: PromotionCalendar) -> None:
    """One line per seed and the total: D/N of at least 3x within 24 h, false alarms per week."""
    total_found = total_n = total_false = total_promo = 0
    total_weeks = 0.0
    for seed in seeds:
        replay, incidents, promo_days = simulate(seed, th, min_baseline, calendar)
        false_normal, false_promo = score(replay, incidents, promo_days, th)
        found, n = _detected(incidents)
        weeks = _normal_weeks(th, promo_days)
        missed = [i for i in incidents if i.counted and i.size >= 3 and (i.detected_h is None or i.detected_h > 24)]
        on_promotion = sum(1 for i in missed if day_of(i.start_h) in promo_days)
        print(f"seed {seed:>3}: detected {found}/{n} of at least 3x within 24h; false alarms per week "
              f"{len(false_normal) / weeks:.2f}; {len(false_promo)} on promotion days; "
              f"{on_promotion} of {len(missed)} misses start on promotion days", flush=True)
        total_found, total_n, total_false = total_found + found, total_n + n, total_false + len(false_normal)
        total_promo, total_weeks = total_promo + len(false_promo), total_weeks + weeks
    print(f"seeds {seeds.start}-{seeds.stop - 1}: detected {total_found}/{total_n} of at least 3x within 24h; "
          f"false alarms per week {total_false / total_weeks:.2f}; {total_promo} on promotion days")


def _normal_weeks(th: Thresholds, promo_days: Set[dt.date]) -> float:
    evaluated = range(th.history_hours - 1, DAYS * 24)
    return sum(1 for h in evaluated if day_of(h) not in promo_days) / 168


def report(args, th: Thresholds, replay: Replay, incidents: List[Incident], promo_days: Set[dt.date],
           false_normal, false_promo, elapsed: float) -> None:
    end = START + dt.timedelta(days=DAYS)
    warm = th.history_hours // 24
    kinds = ", ".join(f"{k} {replay.events_by_kind[k]}" for k in KINDS)
    print(f"risk-eval: {DAYS} simulated days {START:%Y-%m-%d}..{end:%Y-%m-%d}, {N_SKUS} SKUs, {N_MERCHANTS} merchants, "
          f"{len(CATEGORIES)} categories, seed {args.seed}")
    print(f"events: {sum(replay.events_by_kind.values())} ({kinds}); {len(replay.counts)} keys; "
          f"{replay.checks} trend checks; replay took {elapsed:.1f} s")
    evaluated = sorted(d for d in promo_days if d >= day_of(th.history_hours - 1))
    print(f"promotion days after the warm-up (surge and aftermath): {len(evaluated)}, "
          f"{evaluated[0]:%m-%d}..{evaluated[-1]:%m-%d}" if evaluated else "no promotion days after the warm-up")
    print(f"detector: windows {list(th.windows_h)} h against a {th.baseline_hours // 24}-day share-of-volume baseline; "
          f"alpha {th.alpha:g}, min count {th.min_count}, min ratio {th.min_ratio:g}, dispersion {th.dispersion:g}"
          f"{' (or a noisier key its own)' if th.estimate_dispersion else ''}; "
          f"warm-up {warm} days")
    print(f"incidents counted in D/N: on keys with a baseline of at least {args.min_baseline:g} events/day at normal "
          "volume; smaller keys are shown apart, for information")
    print("size  incidents  detected<=24h  detected ever  median time to detect  (baseline/day min..max)")
    for low, high in incident_bands(args.min_baseline):
        band = [i for i in incidents if low <= i.baseline_per_day < high]
        if low < args.min_baseline:
            print(f"for information, not in D/N: keys of {low:g}..{high:g} events/day")
        for size in SIZES:
            _print_group(f"{size:g}x", [i for i in band if i.size == size])
    missed = [i for i in incidents if i.counted and i.size >= 3 and (i.detected_h is None or i.detected_h > 24)]
    for i in missed:
        on_promotion = " (starts on a promotion day)" if day_of(i.start_h) in promo_days else ""
        began = START + dt.timedelta(hours=i.start_h)
        print(f"  missed: {i.key} {i.size:g}x for {i.end_h - i.start_h} h from {began:%m-%d %H}:00, "
              f"baseline {i.baseline_per_day:.1f}/day{on_promotion}")
    if missed:
        print(MISSED_NOTE)
    weeks = _normal_weeks(th, promo_days)
    print(f"false alarms: {len(false_normal)} on normal-volume days over {weeks:.2f} weeks "
          f"= {len(false_normal) / weeks:.2f} per week (target <= 1); {len(false_promo)} more on promotion days "
          "(not in the per-week figure)")
    if args.show_false:
        for h, key in sorted(false_normal + false_promo, key=lambda pair: (pair[0], str(pair[1]))):
            print(f"  false alarm {START + dt.timedelta(hours=h):%m-%d %H}:00 {key}")


MISSED_NOTE = (
    "note: the target (every >=3x incident within 24 h) is not met on every seed: on held-out seeds 7-16, "
    "176/189 were found in time (false alarms 0.27 a week, none on promotion days). Some misses start during "
    "the long return aftermath of 双11 (10-31 to 11-22): the SKUs a promotion features take a bigger share of "
    "the kind's swollen total, a key it does not feature falls below its usual share, so a 3x rise shows as "
    "little more than 2x, tested at the stricter promotion alpha. The others start on normal days and are not "
    "diagnosed one by one (candidates: keys near 20 events/day found a few hours after 24 h). Variants on "
    "seeds 7-16: the baseline also leaving promotion days out found 171/189 (3 promotion-day false alarms); "
    "ignoring the calendar altogether 181/189 (11 promotion-day false alarms). The thresholds were chosen on "
    "seeds 1-6 only, where the shipped setting and the baseline-skipping one both found 98/107 and the "
    "shipped one raised fewer false alarms (2 on promotion days instead of 3).")


def _print_group(label: str, group: List[Incident]) -> None:
    if not group:
        return
    in_day = [i.detected_h for i in group if i.detected_h is not None and i.detected_h <= 24]
    ever = [i for i in group if i.detected_h is not None]
    median = f"{statistics.median(in_day):.1f} h" if in_day else "-"
    rates = [i.baseline_per_day for i in group]
    print(f"{label:>4}  {len(group):>9}  {len(in_day):>6}/{len(group):<6}  {len(ever):>6}/{len(group):<6}  "
          f"{median:>21}  ({min(rates):.1f}..{max(rates):.1f})")


if __name__ == "__main__":
    sys.exit(main())
