"""The risk detector: trends against a share-of-volume baseline, safety at once, thresholds from knowledge/."""

import dataclasses
import datetime as dt
import math

import pytest

from bot.risk.detector import (
    CRITICAL, HIGH, MIN_RETENTION_DAYS, NORMAL, URGENT, Promotion, PromotionCalendar, SeriesKey, Thresholds,
    assess_safety, assess_trend, load_promotions, load_thresholds, nb_upper_tail, observed_dispersion, series_keys,
    totals_key,
)
from bot.risk.events import new_event

TH = Thresholds(baseline_hours=336, windows_h=(6, 24), history_hours=360, alpha=1e-5, min_count=8, min_ratio=2.0,
                prior=0.5, dispersion=0.05, high_ratio=5.0, high_count=10, labels=load_thresholds().labels)
KEY = SeriesKey("sku", "SKU-40001", "return", "quality")
OTHER_KEYS = 40  # the rest of the store, each as busy as KEY


def flat(per_hour: int, hours: int = 360):
    return [per_hour] * hours


def with_last(series, hours: int, per_hour: int):
    return series[:-hours] + [per_hour] * hours


def store_totals(key_counts, others_per_hour):
    """The kind's hourly total: the key plus every other key."""
    return [k + o for k, o in zip(key_counts, others_per_hour)]


def test_flat_baseline_gives_nothing():
    counts = flat(2)
    assert assess_trend(KEY, counts, store_totals(counts, flat(2 * OTHER_KEYS)), TH) is None


def test_noisy_flat_baseline_gives_nothing():
    # A key that alternates 0..4 an hour around a mean of 2: ordinary noise, no alarm.
    counts = [(h * 7) % 5 for h in range(360)]
    assert assess_trend(KEY, counts, store_totals(counts, flat(80)), TH) is None


def test_a_threefold_burst_on_one_key_is_found():
    counts = with_last(flat(2), 24, 6)
    finding = assess_trend(KEY, counts, store_totals(counts, flat(2 * OTHER_KEYS)), TH)
    assert finding is not None
    assert finding.key == "sku:SKU-40001|return:quality"
    assert (finding.dimension, finding.value, finding.kind, finding.reason) == ("sku", "SKU-40001", "return", "quality")
    assert finding.window_h in TH.windows_h
    assert finding.observed == 6 * finding.window_h
    # Expected from the key's share (2 of 82 an hour) of this window's total (6 + 80 an hour).
    assert finding.expected == pytest.approx((2 * 336 + 0.5) / (82 * 336) * 86 * finding.window_h, rel=1e-3)
    assert finding.ratio == pytest.approx(finding.observed / finding.expected, rel=1e-2)
    assert 2.5 < finding.ratio < 3.0
    assert finding.p_value < TH.alpha / 2
    assert finding.severity == NORMAL
    assert f"{finding.observed} 起" in finding.rule and "倍" in finding.rule and "SKU-40001" in finding.rule


def test_a_burst_is_reported_against_the_baseline_before_it():
    # A burst in the last day must not raise its own expectation: the baseline stops before the window.
    counts = with_last(flat(2), 24, 6)
    totals = store_totals(counts, flat(2 * OTHER_KEYS))
    finding = assess_trend(KEY, counts, totals, TH)
    assert finding.expected < 2 * finding.window_h * 1.1


def test_a_tenfold_burst_is_high_severity_and_found_by_the_short_window():
    counts = with_last(flat(1), 4, 12)
    finding = assess_trend(KEY, counts, store_totals(counts, flat(OTHER_KEYS)), TH)
    assert finding is not None
    assert finding.window_h == 6
    assert finding.severity == HIGH


def test_a_uniform_surge_of_all_keys_is_not_an_alarm():
    # 双11: every key and the whole store at 4x for a day; the share stays the same.
    counts = with_last(flat(2), 24, 8)
    others = with_last(flat(2 * OTHER_KEYS), 24, 8 * OTHER_KEYS)
    assert assess_trend(KEY, counts, store_totals(counts, others), TH) is None


def test_weekly_and_daily_rhythm_is_not_an_alarm():
    rhythm = [1 + (h % 24 in range(9, 22)) * 3 + (h // 24 % 7 == 0) * 2 for h in range(360)]
    counts = [2 * r for r in rhythm]
    assert assess_trend(KEY, counts, store_totals(counts, [r * 2 * OTHER_KEYS for r in rhythm]), TH) is None


def test_small_numbers_below_the_minimum_count_never_alarm():
    # A key never seen before gets 7 events in a day: wildly unlikely, but fewer than min_count.
    counts = with_last(flat(0), 24, 0)
    counts[-7:] = [1] * 7
    totals = store_totals(counts, flat(100))
    assert assess_trend(KEY, counts, totals, TH) is None
    counts[-8] = 1  # the eighth event reaches the minimum: now it alarms
    assert assess_trend(KEY, counts, store_totals(counts, flat(100)), TH) is not None


def test_a_small_ratio_never_alarms_even_when_significant():
    strict = Thresholds(**{**TH.__dict__, "dispersion": 0.0, "min_ratio": 2.0})
    counts = with_last(flat(100), 24, 180)  # 1.8x on a huge key: p is tiny, the ratio is below 2
    totals = store_totals(counts, flat(1000))
    assert assess_trend(KEY, counts, totals, strict) is None
    looser = Thresholds(**{**strict.__dict__, "min_ratio": 1.5})
    assert assess_trend(KEY, counts, totals, looser) is not None


def test_no_baseline_yet_gives_nothing():
    counts = with_last(flat(0), 24, 5)
    assert assess_trend(KEY, counts, counts, TH) is None  # the store had no volume before the window
    assert assess_trend(KEY, [9] * 10, [9] * 10, TH) is None  # a series shorter than the longest window


def test_only_the_most_recent_history_hours_are_read():
    old_burst = [50] * 100
    counts = old_burst + flat(2)
    totals = [50 + 80] * 100 + store_totals(flat(2), flat(80))
    assert assess_trend(KEY, counts, totals, TH) is None


def test_observed_dispersion_is_zero_for_steady_days_and_large_for_swinging_ones():
    steady = flat(2, 336)
    assert observed_dispersion(steady, flat(100, 336), 0.02) == 0.0
    # Days alternating 24 and 72 events around an expectation of 48: (24^2 - 48) / 48^2 ≈ 0.23.
    swinging = [1 if (h // 24) % 2 == 0 else 3 for h in range(336)]
    assert observed_dispersion(swinging, flat(100, 336), 0.02) == pytest.approx((24 ** 2 - 48) / 48 ** 2, rel=1e-6)


def test_a_key_that_always_swings_needs_a_bigger_rise():
    # A best-seller whose days swing between 1x and 3x its mean: a 2.5x day is its normal, not news.
    swinging = [10 if (h // 24) % 2 == 0 else 30 for h in range(336)] + [50] * 24
    others = flat(1000, 360)
    totals = store_totals(swinging, others)
    assert assess_trend(KEY, swinging, totals, TH) is None
    naive = Thresholds(**{**TH.__dict__, "estimate_dispersion": False})
    assert assess_trend(KEY, swinging, totals, naive) is not None


def test_upper_tail_matches_poisson_and_negative_binomial_by_hand():
    # Poisson(1): P(X >= 3) = 1 - e^-1 (1 + 1 + 1/2)
    assert nb_upper_tail(3, 1.0, 1e12) == pytest.approx(1 - math.exp(-1) * 2.5, rel=1e-6)
    # Geometric (size 1) with mean 1: P(X >= k) = (1/2)^k
    assert nb_upper_tail(10, 1.0, 1.0) == pytest.approx(0.5 ** 10, rel=1e-9)
    assert nb_upper_tail(0, 3.0, 5.0) == 1.0
    assert nb_upper_tail(200, 2.0, 1e9) < 1e-100


def test_a_single_safety_report_is_urgent_at_once():
    key = SeriesKey("sku", "SKU-60001", "safety", "fire")
    finding = assess_safety(key, sku_reports=1, merchant_reports=1, th=TH)
    assert finding.severity == URGENT
    assert finding.observed == 1 and finding.expected == 0.0
    assert "SKU-60001" in finding.rule and "起火" in finding.rule and "立即" in finding.rule


@pytest.mark.parametrize("sku_reports, merchant_reports", [(2, 2), (1, 2), (3, 5)])
def test_two_safety_reports_on_a_sku_or_across_a_merchant_are_critical(sku_reports, merchant_reports):
    key = SeriesKey("sku", "SKU-60001", "safety", "shock")
    finding = assess_safety(key, sku_reports, merchant_reports, TH)
    assert finding.severity == CRITICAL
    assert str(merchant_reports) in finding.rule and "严重" in finding.rule


def test_safety_on_a_merchant_key_counts_the_merchant_reports():
    key = SeriesKey("merchant", "m-jiadian", "safety", "injury")
    assert assess_safety(key, 1, 3, TH).observed == 3


def test_thresholds_load_from_the_knowledge_file():
    th = load_thresholds()
    assert th.history_hours == th.baseline_hours + max(th.windows_h)
    assert th.bucket_s == 3600
    assert th.retention_days >= MIN_RETENTION_DAYS == 1096
    assert th.safety_window_h > 0 and 0 < th.alpha < 1e-2 and th.min_count >= 5
    assert 0 < th.promotion_alpha_factor <= 1 and th.min_clean_baseline_hours >= 24
    assert th.labels["kinds"]["return"] == "退货" and th.labels["reasons"]["quality"] == "质量问题"


def test_thresholds_come_from_the_file_given(tmp_path):
    path = tmp_path / "th.yml"
    path.write_text("baseline_hours: 168\nwindows_h: [3, 12]\nalpha: 0.001\nmin_count: 4\nsafety_window_h: 24\n"
                    "retention_days: 1500\nlabels:\n  kinds:\n    return: 退货退款\n", encoding="utf-8")
    th = load_thresholds(path)
    assert (th.baseline_hours, th.windows_h, th.history_hours) == (168, (3, 12), 180)
    assert (th.alpha, th.min_count, th.safety_window_h, th.retention_days) == (0.001, 4, 24, 1500)
    counts = with_last(flat(2, 180), 12, 6)
    finding = assess_trend(KEY, counts, store_totals(counts, flat(80, 180)), th)
    assert finding is not None and "退货退款" in finding.rule


@pytest.mark.parametrize("text", [
    "retention_days: 365\n",  # shorter than 电子商务法 第三十一条 allows
    "windows_h: [24, 800]\n",  # a window longer than the baseline
    "alpha: 0\n",
    "min_ratio: 0.5\n",
    "promotion_alpha_factor: 0\n",
])
def test_nonsensical_thresholds_are_refused(tmp_path, text):
    path = tmp_path / "th.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError):
        load_thresholds(path)


def test_series_keys_of_an_event_with_sku_merchant_and_category():
    event = new_event("return", "quality", "web", sku="SKU-40001", merchant="m-shuma", category="数码电子",
                      order_id="2026111800000001", customer_id="c1001")
    keys = series_keys(event)
    assert [str(k) for k in keys] == ["sku:SKU-40001|return:quality", "merchant:m-shuma|return:quality",
                                      "category:数码电子|return:quality"]


def test_series_keys_of_an_event_without_sku_or_merchant():
    assert [str(k) for k in series_keys(new_event("complaint", "attitude", "wechat", category="家用电器"))] == [
        "category:家用电器|complaint:attitude"]
    assert series_keys(new_event("rights_question", "refund_time", "web")) == []


def test_totals_key_names_the_kind():
    assert totals_key("return") == "all|return"
    assert totals_key("safety") == "all|safety"


# -- the promotion calendar ---------------------------------------------------------------------

def promoted_key_history(promo_per_hour: int = 8):
    """A key at 2 an hour whose share tripled on five promotion days inside its baseline (it was on
    the 双11 home page), then a 3x day now; the rest of the store steady at 80 an hour."""
    counts = flat(2)
    promo = [False] * 360
    for h in range(100, 220):
        counts[h], promo[h] = promo_per_hour, True
    counts = with_last(counts, 24, 6)
    return counts, store_totals(counts, flat(80)), promo


def test_a_promotion_in_the_baseline_hides_a_burst_unless_its_days_are_excluded():
    counts, totals, promo = promoted_key_history()
    assert assess_trend(KEY, counts, totals, TH) is None  # the promotion inflated the share
    finding = assess_trend(KEY, counts, totals, TH, promo)
    assert finding is not None and finding.ratio > 2.5
    # Expected from the 216 clean baseline hours only: 2 of 82 an hour.
    window = finding.window_h
    assert finding.expected == pytest.approx((2 * 216 + 0.5) / (82 * 216) * 86 * window, rel=1e-3)


def test_with_too_few_clean_hours_the_baseline_uses_them_all():
    counts, totals, _ = promoted_key_history()
    almost_all = [True] * 300 + [False] * 60  # only 36 clean baseline hours, fewer than 48
    assert assess_trend(KEY, counts, totals, TH, almost_all) is None
    looser = dataclasses.replace(TH, min_clean_baseline_hours=24)
    assert assess_trend(KEY, counts, totals, looser, almost_all) is not None


def test_excluded_must_match_the_counts():
    counts, totals, promo = promoted_key_history()
    with pytest.raises(ValueError):
        assess_trend(KEY, counts, totals, TH, promo[:-1])


def test_a_window_on_promotion_days_is_tested_at_the_stricter_alpha():
    counts = with_last(flat(2), 24, 6)
    totals = store_totals(counts, flat(2 * OTHER_KEYS))
    window_on_promotion = [False] * 350 + [True] * 10
    strict = dataclasses.replace(TH, promotion_alpha_factor=1e-12)
    assert assess_trend(KEY, counts, totals, strict, [False] * 360) is not None
    assert assess_trend(KEY, counts, totals, strict, window_on_promotion) is None
    assert assess_trend(KEY, counts, totals, TH, window_on_promotion) is not None


def test_the_store_calendar_has_the_2026_promotions():
    calendar = load_promotions()
    by_name = {p.name: p for p in calendar.promotions}
    assert dt.date(2026, 11, 11) in by_name["双11"].peaks
    assert by_name["618"].start <= dt.date(2026, 6, 18) <= by_name["618"].end
    assert {"年货节", "双12"} <= set(by_name)
    assert all(p.start <= p.end and all(p.start <= d <= p.end for d in p.peaks) for p in calendar.promotions)
    assert dict(calendar.aftermath_days)["return"] >= 7  # 七天无理由 returns come after delivery
    assert load_thresholds().promotions == calendar


def test_promotion_days_and_aftermath_are_per_kind_in_beijing_time(tmp_path):
    path = tmp_path / "promotions.yml"
    path.write_text("aftermath_days:\n  return: 3\npromotions:\n  - name: 双11\n    start: 2026-11-11\n"
                    "    end: 2026-11-11\n    peaks: [2026-11-11]\n    peak_volume: 4\n", encoding="utf-8")
    calendar = load_promotions(path)
    assert calendar.promotions == (Promotion("双11", dt.date(2026, 11, 11), dt.date(2026, 11, 11),
                                             (dt.date(2026, 11, 11),), 1.5, 4.0),)
    assert calendar.on_promotion("return", dt.date(2026, 11, 14))
    assert not calendar.on_promotion("return", dt.date(2026, 11, 15))
    assert not calendar.on_promotion("complaint", dt.date(2026, 11, 12))  # no aftermath for complaints
    midnight_beijing = dt.datetime(2026, 11, 10, 16, tzinfo=dt.timezone.utc).timestamp()
    assert calendar.excluded("complaint", [midnight_beijing - 3600, midnight_beijing]) == [False, True]
    assert PromotionCalendar().excluded("return", [midnight_beijing]) == [False]


@pytest.mark.parametrize("entry", [
    "  - name: 双11\n    start: 2026-11-11\n    end: 2026-11-01\n",  # ends before it starts
    "  - name: 双11\n    start: 2026-11-01\n    end: 2026-11-11\n    peaks: [2026-11-12]\n",  # peak outside
    "  - name: 双11\n    start: 2026-11-31\n    end: 2026-12-01\n",  # no such day
    "  - start: 2026-11-01\n    end: 2026-11-11\n",  # no name
    "  - name: 双11\n    start: 2026-11-01\n    end: 2026-11-11\n    planned_volume: 0.5\n",
])
def test_malformed_promotions_are_refused(tmp_path, entry):
    path = tmp_path / "promotions.yml"
    path.write_text("promotions:\n" + entry, encoding="utf-8")
    with pytest.raises(ValueError):
        load_promotions(path)


def test_a_negative_aftermath_is_refused(tmp_path):
    path = tmp_path / "promotions.yml"
    path.write_text("aftermath_days:\n  return: -1\n", encoding="utf-8")
    with pytest.raises(ValueError):
        load_promotions(path)
