"""Is a key's count of rights signals out of line with its history? Pure: no Redis, no Rasa, no HTTP.

A key is one dimension value (a SKU, a merchant or a category) × one kind × one reason, e.g.
``sku:K-1001|return:quality``. Its counts are hourly buckets; so are the totals of the kind across
the whole store (``all|return``).

Method: a negative-binomial (gamma–Poisson) predictive control limit on the key's *share* of its
kind's volume.

* Expected count. The key's share of its kind over the baseline (the ``baseline_hours`` before the
  longest window, so an ongoing burst does not raise its own baseline) times the kind's total in
  the window: ``expected = (baseline + prior) / baseline_total × window_total``. Because the
  expectation scales with the store's own volume, weekly seasonality, the daily rhythm and a
  promotion surge that lifts every key (双11) move the expectation with the counts and do not
  alarm. The small pseudo-count ``prior`` keeps new and rare keys from an expectation of zero.
* Test. The window count is compared with a negative binomial of that mean whose variance
  ``mean + mean² × (dispersion + 1 / (baseline + prior))`` adds to Poisson noise the day-to-day
  over-dispersion real complaint counts have and the uncertainty of a share learned from few
  events (the gamma–Poisson predictive distribution). ``dispersion`` is the larger of a
  configured floor and the key's own, estimated by moments on the daily blocks of its baseline
  (`observed_dispersion`), so a best-seller that always swings needs a bigger rise to alarm. The
  one-sided upper-tail p-value must be below ``alpha / len(windows_h)`` (Bonferroni across
  windows; ``alpha`` itself is the per-key, per-check budget, see knowledge/risk_thresholds.yml).
* Guards. Small numbers never alarm: the window must hold at least ``min_count`` events and at
  least ``min_ratio`` times the expectation, whatever the p-value.
* Windows. Several (6 h and 24 h by default): a short one finds a sharp burst within hours, a
  long one a moderate rise within a day.
* Promotions. The store's promotion calendar (knowledge/promotions.yml, `load_promotions`) says
  which days a kind runs on promotion volume: the promotion itself and, per kind, its aftermath
  (returns follow deliveries by days). Those buckets (`excluded`) are left out of the baseline
  share, because a promotion lifts the SKUs it features more than the rest and would hide a 3x
  rise on them for two weeks; the expectation of a promotion window still scales with the kind's
  total, so a uniform surge stays quiet. A window on promotion days is tested at
  ``alpha × promotion_alpha_factor``.

Safety reports do not wait for a trend (`assess_safety`): one is urgent at once; a second on the
same SKU, or across the merchant, within ``safety_window_h`` is critical.

References: Farrington et al., "A statistical algorithm for the early detection of outbreaks of
infectious disease" (JRSS A, 1996) for expected-vs-observed counts with over-dispersion and a
minimum count; Noufaily et al. (Stat Med, 2013) for the negative-binomial upper limit.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple

import yaml

from bot.paths import KNOWLEDGE_DIR
from bot.risk.events import RiskEvent

THRESHOLDS_FILE = KNOWLEDGE_DIR / "risk_thresholds.yml"
PROMOTIONS_FILE = KNOWLEDGE_DIR / "promotions.yml"
# The store's calendar is in Beijing time (China keeps no daylight saving time).
SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
DIMENSIONS = ("sku", "merchant", "category")
URGENT, CRITICAL, HIGH, NORMAL = "urgent", "critical", "high", "normal"
# 电子商务法 第三十一条: transaction information is kept "不少于三年" (three years, one of them leap).
MIN_RETENTION_DAYS = 1096


@dataclass(frozen=True)
class SeriesKey:
    dimension: str  # sku | merchant | category
    value: str
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"{self.dimension}:{self.value}|{self.kind}:{self.reason}"


def series_keys(event: RiskEvent) -> List[SeriesKey]:
    """The keys an event counts towards: one per dimension the event has (SKU, merchant, category)."""
    values = {"sku": event.sku, "merchant": event.merchant, "category": event.category}
    return [SeriesKey(dim, values[dim], event.kind, event.reason) for dim in DIMENSIONS if values[dim]]


def totals_key(kind: str) -> str:
    """The series of all events of a kind, the volume every key's expectation scales with."""
    return f"all|{kind}"


@dataclass(frozen=True)
class Promotion:
    name: str
    start: dt.date  # first day, Asia/Shanghai
    end: dt.date  # last day, inclusive
    peaks: Tuple[dt.date, ...] = ()
    planned_volume: float = 1.5  # the store's planning figure: a day's volume against a normal day
    peak_volume: float = 3.0  # the same on a peak day


@dataclass(frozen=True)
class PromotionCalendar:
    promotions: Tuple[Promotion, ...] = ()
    # Days after a promotion's last day that a kind still runs on its volume, e.g. returns.
    aftermath_days: Tuple[Tuple[str, int], ...] = ()

    def on_promotion(self, kind: str, day: dt.date) -> bool:
        """True when `day` is a promotion day or within the kind's aftermath of one."""
        after = dict(self.aftermath_days).get(kind, 0)
        return any(p.start <= day <= p.end + dt.timedelta(days=after) for p in self.promotions)

    def excluded(self, kind: str, bucket_starts: Iterable[float]) -> List[bool]:
        """The `excluded` mask of assess_trend for buckets starting at these unix times."""
        return [self.on_promotion(kind, dt.datetime.fromtimestamp(t, SHANGHAI).date()) for t in bucket_starts]


def _date(value, what: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"promotions: {what} {value!r} is not a date (YYYY-MM-DD)") from None


def load_promotions(path: Optional[Path] = None) -> PromotionCalendar:
    """The store's promotion calendar from knowledge/promotions.yml; raises ValueError when malformed."""
    raw = yaml.safe_load(Path(path or PROMOTIONS_FILE).read_text(encoding="utf-8")) or {}
    promotions = []
    for item in raw.get("promotions") or []:
        name = str(item.get("name") or "").strip()
        start, end = _date(item.get("start"), "start"), _date(item.get("end"), "end")
        peaks = tuple(_date(p, "peak") for p in item.get("peaks") or ())
        if not name or end < start or any(not start <= p <= end for p in peaks):
            raise ValueError(f"promotions: {name or 'an entry'} needs a name, start <= end and its peaks inside")
        planned, peak = float(item.get("planned_volume", 1.5)), float(item.get("peak_volume", 3.0))
        if planned < 1 or peak < 1:
            raise ValueError(f"promotions: {name}: volumes are multiples of a normal day, at least 1")
        promotions.append(Promotion(name, start, end, peaks, planned, peak))
    aftermath = tuple(sorted((str(k), int(v)) for k, v in (raw.get("aftermath_days") or {}).items()))
    if any(days < 0 for _, days in aftermath):
        raise ValueError("promotions: aftermath_days must not be negative")
    return PromotionCalendar(tuple(promotions), aftermath)


@dataclass(frozen=True)
class Thresholds:
    bucket_s: int = 3600
    baseline_hours: int = 336
    windows_h: Tuple[int, ...] = (6, 24)
    history_hours: int = 360  # baseline_hours + the longest window: the series length assess_trend wants
    alpha: float = 1e-5
    min_count: int = 8
    min_ratio: float = 2.0
    prior: float = 0.5
    dispersion: float = 0.02  # the floor; with estimate_dispersion a noisier key uses its own
    estimate_dispersion: bool = True
    high_ratio: float = 5.0
    high_count: int = 10
    safety_window_h: int = 72
    retention_days: int = MIN_RETENTION_DAYS
    promotion_alpha_factor: float = 1.0  # alpha × this for a window on promotion days
    min_clean_baseline_hours: int = 48  # fewer non-promotion baseline hours: the baseline uses them all
    baseline_skips_promotions: bool = True  # False: promotion days only tighten alpha, the baseline keeps them
    promotions: PromotionCalendar = field(default_factory=PromotionCalendar, compare=False)
    # Chinese names for rule sentences; left out of equality and hashing.
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict, compare=False)


def load_thresholds(path: Optional[Path] = None, promotions: Optional[Path] = None) -> Thresholds:
    """Thresholds from knowledge/risk_thresholds.yml with the promotion calendar of
    knowledge/promotions.yml; raises ValueError when they make no sense."""
    raw = yaml.safe_load(Path(path or THRESHOLDS_FILE).read_text(encoding="utf-8")) or {}
    windows = tuple(int(w) for w in raw.get("windows_h", (6, 24)))
    baseline = int(raw.get("baseline_hours", 336))
    th = Thresholds(
        bucket_s=int(raw.get("bucket_s", 3600)), baseline_hours=baseline, windows_h=windows,
        history_hours=baseline + max(windows, default=0), alpha=float(raw.get("alpha", 1e-5)),
        min_count=int(raw.get("min_count", 8)), min_ratio=float(raw.get("min_ratio", 2.0)),
        prior=float(raw.get("prior", 0.5)), dispersion=float(raw.get("dispersion", 0.02)),
        estimate_dispersion=bool(raw.get("estimate_dispersion", True)),
        high_ratio=float(raw.get("high_ratio", 5.0)), high_count=int(raw.get("high_count", 10)),
        safety_window_h=int(raw.get("safety_window_h", 72)),
        retention_days=int(raw.get("retention_days", MIN_RETENTION_DAYS)),
        promotion_alpha_factor=float(raw.get("promotion_alpha_factor", 1.0)),
        min_clean_baseline_hours=int(raw.get("min_clean_baseline_hours", 48)),
        baseline_skips_promotions=bool(raw.get("baseline_skips_promotions", True)),
        promotions=load_promotions(promotions),
        labels={k: dict(v or {}) for k, v in (raw.get("labels") or {}).items()},
    )
    _check(th)
    return th


def _check(th: Thresholds) -> None:
    if not th.windows_h or min(th.windows_h) < 1 or th.baseline_hours < max(th.windows_h):
        raise ValueError("risk thresholds: windows_h must be positive and shorter than baseline_hours")
    if not 0 < th.alpha < 1 or th.prior <= 0 or th.dispersion < 0 or th.min_count < 1 or th.min_ratio < 1:
        raise ValueError("risk thresholds: need 0 < alpha < 1, prior > 0, dispersion >= 0, min_count >= 1, "
                         "min_ratio >= 1")
    if not 0 < th.promotion_alpha_factor <= 1 or th.min_clean_baseline_hours < 1:
        raise ValueError("risk thresholds: need 0 < promotion_alpha_factor <= 1, min_clean_baseline_hours >= 1")
    if th.retention_days < MIN_RETENTION_DAYS:
        raise ValueError(f"risk thresholds: retention_days must be at least {MIN_RETENTION_DAYS} (电子商务法 第三十一条)")


@dataclass(frozen=True)
class Finding:
    key: str
    dimension: str
    value: str
    kind: str
    reason: str
    severity: str  # urgent | critical | high | normal
    observed: int
    expected: float
    ratio: float  # observed / expected; 0.0 for safety findings, which do not compare with a baseline
    window_h: int
    p_value: float  # upper-tail probability; 0.0 for safety findings, which are not a test
    rule: str  # one Chinese sentence for supervisors: why this alert


def nb_upper_tail(observed: int, mean: float, size: float) -> float:
    """P(X >= observed) for a negative binomial with this mean and size (shape) parameter.

    Summed upwards from `observed` so that tiny tails keep their precision; callers only ask for
    counts above the mean, where the terms fall geometrically.
    """
    if observed <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if size > 1e8:  # Poisson in the limit; lgamma of huge sizes would lose the digits we need
        log_term = observed * math.log(mean) - mean - math.lgamma(observed + 1)
    else:
        q = mean / (size + mean)
        log_term = (math.lgamma(observed + size) - math.lgamma(size) - math.lgamma(observed + 1)
                    + size * math.log1p(-q) + observed * math.log(q))
    term, total, k = math.exp(log_term), 0.0, observed
    while term > 0 and k < observed + 100_000:
        total += term
        ratio = mean / (k + 1) if size > 1e8 else (k + size) / (k + 1) * mean / (size + mean)
        if ratio < 1 and term * ratio / (1 - ratio) < total * 1e-12:
            break
        term *= ratio
        k += 1
    return min(total, 1.0)


def observed_dispersion(counts: Sequence[int], totals: Sequence[int], share: float, block_h: int = 24) -> float:
    """The key's own extra-Poisson variance over its baseline, by moments on daily blocks.

    For each day, E[(x - e)^2] = e + c2 * e^2 under a gamma-Poisson model with expectation e;
    c2 = sum((x - e)^2 - e) / sum(e^2), never below zero. Days are counted back from the end, so
    every block is a whole day.
    """
    excess, scale = 0.0, 0.0
    for end in range(len(counts), block_h - 1, -block_h):
        observed = sum(counts[end - block_h:end])
        expected = share * sum(totals[end - block_h:end])
        excess += (observed - expected) ** 2 - expected
        scale += expected * expected
    return max(0.0, excess / scale) if scale > 0 else 0.0


def _window_finding(key: SeriesKey, observed: int, expected: float, share_events: float, dispersion: float,
                    window_h: int, alpha: float, th: Thresholds) -> Optional[Finding]:
    size = 1.0 / (dispersion + 1.0 / share_events)
    p_value = nb_upper_tail(observed, expected, size)
    if p_value >= alpha / len(th.windows_h):
        return None
    ratio = observed / expected if expected > 0 else float(observed)
    severity = HIGH if ratio >= th.high_ratio and observed >= th.high_count else NORMAL
    return Finding(key=str(key), dimension=key.dimension, value=key.value, kind=key.kind, reason=key.reason,
                   severity=severity, observed=observed, expected=round(expected, 3), ratio=round(ratio, 2),
                   window_h=window_h, p_value=p_value,
                   rule=_trend_rule(key, observed, expected, ratio, window_h, th))


def assess_trend(key: SeriesKey, counts: Sequence[int], totals: Sequence[int], th: Thresholds,
                 excluded: Optional[Sequence[bool]] = None) -> Optional[Finding]:
    """A Finding when the key's recent count is far above what its share of the volume predicts.

    `counts` and `totals` are hourly buckets, oldest first, the last one the current (partial) hour,
    `th.history_hours` long (shorter series are read as the most recent hours). `excluded`, as long
    as `counts`, marks the promotion buckets (PromotionCalendar.excluded): the baseline share is
    learned from the others, unless fewer than `th.min_clean_baseline_hours` remain. Of the windows
    that alarm, the Finding reports the one with the strongest evidence (smallest p-value).
    """
    longest = max(th.windows_h)
    if excluded is not None and len(excluded) != len(counts):
        raise ValueError("assess_trend: excluded must be as long as counts")
    counts, totals = list(counts)[-th.history_hours:], list(totals)[-th.history_hours:]
    promo = [bool(x) for x in excluded][-th.history_hours:] if excluded is not None else [False] * len(counts)
    if len(counts) != len(totals) or len(counts) <= longest:
        return None
    if th.baseline_skips_promotions:
        base_counts, base_totals = _clean_baseline(counts[:-longest], totals[:-longest], promo[:-longest], th)
    else:
        base_counts, base_totals = counts[:-longest], totals[:-longest]
    baseline_total = sum(base_totals)
    if baseline_total <= 0:
        return None  # nothing learned yet: no share to compare with
    share_events = sum(base_counts) + th.prior
    share = share_events / baseline_total
    dispersion, best = None, None
    for window_h in th.windows_h:
        observed = sum(counts[-window_h:])
        expected = share * sum(totals[-window_h:])
        if observed < th.min_count or observed < th.min_ratio * expected:
            continue  # small numbers and small ratios never alarm, however unlikely
        if dispersion is None:
            own = observed_dispersion(base_counts, base_totals, share) if th.estimate_dispersion else 0.0
            dispersion = max(th.dispersion, own)
        alpha = th.alpha * (th.promotion_alpha_factor if any(promo[-window_h:]) else 1.0)
        found = _window_finding(key, observed, expected, share_events, dispersion, window_h, alpha, th)
        if found and (best is None or found.p_value < best.p_value):
            best = found
    return best


def _clean_baseline(counts: List[int], totals: List[int], promo: List[bool],
                    th: Thresholds) -> Tuple[List[int], List[int]]:
    """The baseline buckets off promotion, or all of them when too few are."""
    if sum(1 for x in promo if not x) < th.min_clean_baseline_hours:
        return counts, totals
    kept = [i for i, x in enumerate(promo) if not x]
    return [counts[i] for i in kept], [totals[i] for i in kept]


def assess_safety(key: SeriesKey, sku_reports: int, merchant_reports: int, th: Thresholds) -> Finding:
    """A safety report never waits for a trend: urgent at once, critical from the second report.

    `sku_reports` / `merchant_reports`: safety reports on this SKU / across this merchant within
    `th.safety_window_h`, this one included.
    """
    critical = sku_reports >= 2 or merchant_reports >= 2
    observed = {"sku": sku_reports, "merchant": merchant_reports}.get(key.dimension, max(sku_reports, merchant_reports))
    return Finding(key=str(key), dimension=key.dimension, value=key.value, kind=key.kind, reason=key.reason,
                   severity=CRITICAL if critical else URGENT, observed=max(int(observed), 1), expected=0.0,
                   ratio=0.0, window_h=th.safety_window_h, p_value=0.0,
                   rule=_safety_rule(key, sku_reports, merchant_reports, th))


# -- rule sentences ----------------------------------------------------------------------------

def _label(th: Thresholds, group: str, code: str) -> str:
    return th.labels.get(group, {}).get(code, code)


def _subject(key: SeriesKey, th: Thresholds) -> str:
    reason = _label(th, "reasons", key.reason)
    return f"{_label(th, 'dimensions', key.dimension)}「{key.value}」的「{reason}」{_label(th, 'kinds', key.kind)}"


def _trend_rule(key: SeriesKey, observed: int, expected: float, ratio: float, window_h: int, th: Thresholds) -> str:
    days = th.baseline_hours // 24
    return (f"近{window_h}小时{_subject(key, th)} {observed} 起，按近{days}天占比的基线应约 {expected:.1f} 起"
            f"（{ratio:.1f} 倍），超出正常波动。")


def _safety_rule(key: SeriesKey, sku_reports: int, merchant_reports: int, th: Thresholds) -> str:
    what = _label(th, "reasons", key.reason)
    dim = _label(th, "dimensions", key.dimension)
    if sku_reports >= 2 or merchant_reports >= 2:
        return (f"{th.safety_window_h}小时内同一商品已有 {sku_reports} 起、同一商家共 {merchant_reports} 起安全事件报告"
                f"（本次为「{what}」，{dim}「{key.value}」），已升级为严重预警。")
    return f"收到{dim}「{key.value}」的「{what}」安全事件报告，安全事件不等趋势，立即预警。"

