"""Rate limiters (Reverb's SampleToInsertRatio and MinSize) and idempotent inserts."""

import json
import math
import pickle
import random
import re
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivetrain.replay import (
    IdempotentInserts,
    MinSize,
    RateLimiter,
    RateLimitError,
    SampleToInsertRatio,
    SequenceGapError,
)


def play(limiter, steps):
    """Each step: (op, num, allowed, diff after). A refused op must raise and count nothing."""
    for i, (op, num, allowed, diff) in enumerate(steps):
        can = limiter.can_insert(num) if op == "insert" else limiter.can_sample(num)
        assert can is allowed, f"step {i}: {op}({num}) allowed={can}, expected {allowed}"
        if allowed:
            getattr(limiter, op)(num)
        else:
            before = (limiter.inserts, limiter.samples)
            with pytest.raises(RateLimitError, match=f"{op} of {num} refused"):
                getattr(limiter, op)(num)
            assert (limiter.inserts, limiter.samples) == before
        if diff is not None:
            assert limiter.diff == diff, f"step {i}: diff {limiter.diff}, expected {diff}"


def minimal_buffer(r, n_max=1, k_max=1):
    """The smallest float error_buffer e with 2e >= n_max * r + k_max, exactly."""
    exact = (n_max * Fraction(r) + k_max) / 2
    e = float(exact)
    return e if Fraction(e) >= exact else math.nextafter(e, math.inf)


def band(config):
    """The exact [min_diff, max_diff] of a SampleToInsertRatio config (worked out here, not read)."""
    r, m, e = Fraction(config["samples_per_insert"]), config["min_size_to_sample"], config["error_buffer"]
    if isinstance(e, tuple):
        return Fraction(e[0]), Fraction(e[1])
    return r * m - Fraction(e), r * m + Fraction(e)


def stuck_pairs(limiter):
    """Every (insert size, sample size) within the limits for which both are refused."""
    n_max, k_max = limiter.config["max_insert_batch"], limiter.config["max_sample_batch"]
    return [
        (n, k)
        for n in range(1, n_max + 1)
        for k in range(1, k_max + 1)
        if not limiter.can_insert(n) and not limiter.can_sample(k)
    ]


def simulate(limiter, producers, consumers, budget, rng, capacity=None, max_steps=None):
    """Producers (insert sizes) and consumers (sample sizes) act whenever allowed, one at a
    time in a random order, until ``budget`` items are inserted. A ring of ``capacity``
    evicts (deletes) the oldest items. Returns (trace, stuck): trace rows are
    (op, num, size before, size after, inserts, samples); stuck is True if nobody could act."""
    trace = []
    while limiter.inserts < budget and (max_steps is None or len(trace) < max_steps):
        allowed = [("insert", n) for n in producers if limiter.can_insert(n)]
        allowed += [("sample", k) for k in consumers if limiter.can_sample(k)]
        if not allowed:
            return trace, True
        op, num = rng.choice(allowed)
        size = limiter.size
        getattr(limiter, op)(num)
        if capacity is not None and limiter.size > capacity:
            limiter.delete(limiter.size - capacity)
        trace.append((op, num, size, limiter.size, limiter.inserts, limiter.samples))
    return trace, False


def test_sample_to_insert_ratio_hand_worked():
    # r = 2, m = 3, e = 3: the band is [r*m - e, r*m + e] = [3, 9]; diff = 2 * inserts - samples.
    limiter = SampleToInsertRatio(2.0, 3, 3.0)
    assert (limiter.min_diff, limiter.max_diff) == (3.0, 9.0)
    steps = [
        ("sample", 1, False, 0.0),  # stage 1: size 0 < 3
        ("insert", 1, True, 2.0),  # stage 1: inserts always allowed
        ("insert", 1, True, 4.0),
        ("sample", 1, False, 4.0),  # size 2 < 3
        ("insert", 1, True, 6.0),  # size 3: stage 2 starts at the band's centre r*m = 6
        ("insert", 1, True, 8.0),  # 6 + 2 = 8 <= 9
        ("insert", 1, False, 8.0),  # 8 + 2 = 10 > 9
        *[("sample", 1, True, d) for d in (7.0, 6.0, 5.0, 4.0, 3.0)],  # down to 3 = min_diff
        ("sample", 1, False, 3.0),  # 3 - 1 = 2 < 3
        ("insert", 1, True, 5.0),
        ("insert", 1, True, 7.0),
        ("insert", 1, True, 9.0),  # 9 <= 9: the boundary is allowed
        ("insert", 1, False, 9.0),  # 11 > 9
        ("sample", 1, True, 8.0),
    ]
    play(limiter, steps)
    assert (limiter.inserts, limiter.samples, limiter.size) == (7, 6, 7)


def test_fractional_ratio_and_batched_samples_hand_worked():
    # r = 0.25, m = 4, e = 2.5, samples of up to 4: width 5 >= 1 * 0.25 + 4 = 4.25.
    # Band [0.25*4 - 2.5, 0.25*4 + 2.5] = [-1.5, 3.5].
    limiter = SampleToInsertRatio(0.25, 4, 2.5, max_sample_batch=4)
    steps = [("insert", 1, True, d) for d in (0.25, 0.5, 0.75, 1.0)]  # stage 1, diff = 1 = r*m
    steps += [
        ("sample", 4, False, 1.0),  # 1 - 4 = -3 < -1.5
        ("sample", 2, True, -1.0),  # 1 - 2 = -1 >= -1.5
        ("sample", 1, False, -1.0),  # -2 < -1.5
    ]
    steps += [("insert", 1, True, -1.0 + 0.25 * i) for i in range(1, 19)]  # up to -1 + 4.5 = 3.5
    steps += [
        ("insert", 1, False, 3.5),  # 3.75 > 3.5
        ("sample", 4, True, -0.5),  # 3.5 - 4 = -0.5 >= -1.5
    ]
    play(limiter, steps)


def test_a_batch_that_crosses_min_size_is_let_through_and_then_sampled_down():
    # r = 1, m = 3, e = 2.5, inserts of up to 4: width 5 >= 4 * 1 + 1. Band [0.5, 5.5].
    limiter = SampleToInsertRatio(1.0, 3, 2.5, max_insert_batch=4)
    steps = [
        ("insert", 1, True, 1.0),
        ("insert", 1, True, 2.0),
        ("sample", 1, False, 2.0),  # size 2 < 3
        ("insert", 4, True, 6.0),  # stage 1 (size 2 < 3): allowed; diff 6 > max_diff 5.5
        ("insert", 1, False, 6.0),  # 7 > 5.5
        *[("sample", 1, True, d) for d in (5.0, 4.0, 3.0, 2.0, 1.0)],  # back in the band at 5
        ("sample", 1, False, 1.0),  # 0 < 0.5
        ("insert", 4, True, 5.0),  # 1 + 4 = 5 <= 5.5
    ]
    play(limiter, steps)
    # Under Reverb's rule (inserts free only while size + n <= m), the same batch at size 2
    # would take diff to 6 > 5.5 with sampling not yet open: it and every sample are refused.
    settings_ = dict(samples_per_insert=1.0, min_size_to_sample=3, error_buffer=2.5, max_insert_batch=4)
    reverb, ours = ReverbStageOne(**settings_), SampleToInsertRatio(**settings_)
    for limiter in (reverb, ours):
        limiter.insert(1)
        limiter.insert(1)
    assert (stuck_pairs(reverb), stuck_pairs(ours)) == ([(4, 1)], [])


class ReverbStageOne(SampleToInsertRatio):
    """Reverb's stage-1 rule for batches: an insert is free only while size + n <= min size."""

    def can_insert(self, num=1):
        m = self.min_size_to_sample
        if self.size < m < self.size + num:
            return (self.inserts + num) * self.samples_per_insert - self.samples <= self.max_diff
        return super().can_insert(num)


def test_min_size_hand_worked():
    with pytest.raises(ValueError, match="MinSize: min_size_to_sample must be an integer >= 1, got 0"):
        MinSize(0)
    limiter = MinSize(2)
    assert not limiter.can_sample(1)  # size 0 < 2
    limiter.insert(1)
    assert not limiter.can_sample(1)  # size 1 < 2
    limiter.insert(1)
    assert limiter.can_sample(1) and limiter.can_sample(1000)  # size 2: any sample
    limiter.sample(1000)
    assert limiter.can_insert(10**6)  # inserts are never refused
    limiter.delete(1)
    assert not limiter.can_sample(1)  # size 1 < 2 again
    with pytest.raises(RateLimitError, match="size 1 < min_size_to_sample 2"):
        limiter.sample(1)
    assert (limiter.inserts, limiter.samples, limiter.deletes, limiter.size) == (2, 1000, 1, 1)


def test_delete_reset_and_num():
    limiter = SampleToInsertRatio(1.0, 2, 2.0, max_insert_batch=2)  # width 4 >= 2 * 1 + 1
    limiter.insert(2)
    assert limiter.can_sample(1)
    limiter.delete(1)  # size 1 < 2: back in stage 1
    assert not limiter.can_sample(1) and limiter.can_insert(1)
    limiter.delete(0)  # allowed, counts nothing
    with pytest.raises(ValueError, match="num=2 is more than the size 1"):
        limiter.delete(2)
    limiter.reset()
    assert (limiter.inserts, limiter.samples, limiter.deletes) == (0, 0, 0)
    with pytest.raises(ValueError, match="num must be an integer >= 1, got 0"):
        limiter.can_insert(0)
    with pytest.raises(ValueError, match="num=3 is more than max_insert_batch=2"):
        limiter.can_insert(3)
    with pytest.raises(ValueError, match="num=2 is more than max_sample_batch=1"):
        limiter.sample(2)


# (samples_per_insert, min_size_to_sample, error_buffer, batch limits, what the error says)
BAD_SETTINGS = [
    (0.0, 1, 5.0, {}, "samples_per_insert must be > 0"),
    (-1.0, 1, 5.0, {}, "samples_per_insert"),
    (math.nan, 1, 5.0, {}, "samples_per_insert"),
    (math.inf, 1, 5.0, {}, "samples_per_insert"),
    (1.0, 0, 5.0, {}, "min_size_to_sample"),
    (1.0, 2.5, 5.0, {}, "min_size_to_sample"),
    (1.0, 1, 0.0, {}, "error_buffer must be > 0"),
    (1.0, 1, 0.9, {}, "error_buffer=0.9 is too small"),  # 2 * 0.9 < 1 * 1 + 1
    (1.0, 1, (0.0, 1.0), {}, "max_diff - min_diff = 1.0 must be >= 2.0"),
    (1.0, 1, (0.0,), {}, "error_buffer must be a number or a pair"),
    (1.0, 1, (0.0, math.inf), {}, "error_buffer[1] (max_diff) must be a finite number"),
    (1.0, 1, 5.0, {"max_insert_batch": 0}, "max_insert_batch"),
    (1.0, 1, 5.0, {"max_sample_batch": 0}, "max_sample_batch"),
    (1.0, 1, 1.0, {"max_insert_batch": 2}, "too small"),  # 2 * 1 < 2 * 1 + 1: fine for single items only
]


@pytest.mark.parametrize("r, m, e, batches, field", BAD_SETTINGS)
def test_bad_settings_are_refused_naming_the_field(r, m, e, batches, field):
    with pytest.raises(ValueError, match=re.escape(field)) as info:
        SampleToInsertRatio(r, m, e, **batches)
    assert str(info.value).startswith("SampleToInsertRatio: ")


@pytest.mark.parametrize(
    "r, n_max, k_max", [(1.0, 1, 1), (2.0, 1, 1), (0.5, 1, 1), (0.1, 1, 1), (3.0, 2, 4), (256.0, 8, 256)]
)
def test_the_no_deadlock_bound_is_exact(r, n_max, k_max):
    # 2 * error_buffer >= max_insert_batch * r + max_sample_batch, and not one ulp less.
    e = minimal_buffer(r, n_max, k_max)
    SampleToInsertRatio(r, 5, e, max_insert_batch=n_max, max_sample_batch=k_max)
    with pytest.raises(ValueError, match="too small"):
        SampleToInsertRatio(r, 5, math.nextafter(e, 0.0), max_insert_batch=n_max, max_sample_batch=k_max)


def test_from_tolerance():
    # Acme's rule: error_buffer = tolerance * samples_per_insert * min_size_to_sample.
    assert SampleToInsertRatio.from_tolerance(1.0, 100, 0.1).config["error_buffer"] == pytest.approx(10.0)
    assert SampleToInsertRatio.from_tolerance(256.0, 1000).config["error_buffer"] == pytest.approx(25600.0)
    # 0.1 * 4 * 1 = 0.4 is below the deadlock-free minimum (4 + 1) / 2 = 2.5: raised to it.
    assert SampleToInsertRatio.from_tolerance(4.0, 1, 0.1).config["error_buffer"] == 2.5
    # ... which depends on the batch sizes: (2 * 4 + 8) / 2 = 8.
    limiter = SampleToInsertRatio.from_tolerance(4.0, 1, 0.1, max_insert_batch=2, max_sample_batch=8)
    assert limiter.config["error_buffer"] == 8.0
    assert stuck_pairs(limiter) == []
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        SampleToInsertRatio.from_tolerance(1.0, 10, -0.1)


ratios = st.one_of(st.sampled_from([0.1, 0.25, 1 / 3, 0.5, 1.0, 2.0, 3.0]), st.floats(0.05, 4.0))


@st.composite
def settings_near_the_bound(draw):
    """Settings on both sides of the no-deadlock bound: 2e >= max_insert_batch * r + max_sample_batch."""
    r = draw(ratios)
    m = draw(st.integers(1, 20))
    n_max, k_max = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    e_min = minimal_buffer(r, n_max, k_max)
    factor = draw(st.sampled_from([0.5, 0.9, "one ulp less", 1.0, 1.0, 1.01, 1.5, 4.0]))
    e = math.nextafter(e_min, 0.0) if factor == "one ulp less" else e_min * factor
    if draw(st.booleans()):  # an explicit (min_diff, max_diff), anywhere near r * m
        lo = draw(st.floats(-10.0, r * m + 10.0))
        hi = lo + 2 * e
        while e >= e_min and Fraction(hi) - Fraction(lo) < 2 * Fraction(e):  # rounding: widen by an ulp
            hi = math.nextafter(hi, math.inf)
        buffer = (lo, hi)
    else:
        buffer = e
    names = (
        "samples_per_insert",
        "min_size_to_sample",
        "error_buffer",
        "max_insert_batch",
        "max_sample_batch",
    )
    return dict(zip(names, (r, m, buffer, n_max, k_max), strict=True))


def make_or_refuse(config):
    """The limiter, or None when the settings are refused; refused exactly when below the bound."""
    lo, hi = band(config)
    r, n_max, k_max = (
        Fraction(config["samples_per_insert"]),
        config["max_insert_batch"],
        config["max_sample_batch"],
    )
    valid = hi - lo >= n_max * r + k_max
    try:
        limiter = SampleToInsertRatio(**config)
    except ValueError as error:
        assert not valid, f"valid settings refused: {error}"
        assert "too small" in str(error)
        return None
    assert valid, f"settings below the no-deadlock bound accepted: {config}"
    return limiter


@settings(max_examples=150, deadline=None)
@given(config=settings_near_the_bound(), data=st.data())
def test_no_state_of_the_counters_is_stuck(config, data):
    # Any counters (reached by any mix of inserts, samples, deletes, or loaded), diff near the band.
    limiter = make_or_refuse(config)
    if limiter is None:
        return
    m = config["min_size_to_sample"]
    lo, hi = band(limiter.config)
    r = Fraction(config["samples_per_insert"])
    deletes = data.draw(st.integers(0, 1000))
    inserts = deletes + data.draw(st.integers(0, 3 * m))
    target = lo + Fraction(data.draw(st.floats(-8.0, float(hi - lo) + 8.0)))
    samples = max(0, math.floor(inserts * r - target) + data.draw(st.integers(-1, 1)))
    limiter.load_state_dict(
        {"config": limiter.config, "inserts": inserts, "samples": samples, "deletes": deletes}
    )
    assert stuck_pairs(limiter) == []


@settings(max_examples=80, deadline=None)
@given(
    config=settings_near_the_bound(),
    data=st.data(),
    budget=st.integers(20, 120),
    extra_capacity=st.one_of(st.none(), st.integers(0, 30)),
    seed=st.integers(0, 2**32 - 1),
)
def test_producers_and_consumers_never_deadlock_and_keep_the_ratio(
    config, data, budget, extra_capacity, seed
):
    limiter = make_or_refuse(config)
    if limiter is None:
        return
    n_max, k_max, m = config["max_insert_batch"], config["max_sample_batch"], config["min_size_to_sample"]
    producers = data.draw(st.lists(st.integers(1, n_max), min_size=1, max_size=3))
    consumers = data.draw(st.lists(st.integers(1, k_max), min_size=1, max_size=3))
    capacity = None if extra_capacity is None else m + extra_capacity
    trace, stuck = simulate(limiter, producers, consumers, budget, random.Random(seed), capacity)
    assert not stuck, f"deadlock after {trace[-3:]}: {limiter!r}"
    assert limiter.inserts >= budget

    lo, hi = band(limiter.config)
    r = Fraction(config["samples_per_insert"])
    in_band = False
    for op, _, size_before, size_after, inserts, samples in trace:
        diff = inserts * r - samples
        if op == "sample":
            assert diff >= lo  # a sample never takes diff below min_diff
        elif size_before >= m:
            assert diff <= hi  # nor an insert in stage 2 above max_diff
        if in_band:
            assert lo <= diff <= hi  # once within the band, it stays there
        in_band = in_band or (size_after >= m and lo <= diff <= hi)
        if not isinstance(config["error_buffer"], tuple) and size_before >= m:
            # Samples stay within e of r * (inserts since the replay reached m), bar a
            # crossing batch's overshoot that only sampling brings down.
            e = Fraction(config["error_buffer"])
            assert -e <= (inserts - m) * r - samples
            assert in_band or op == "sample"


def test_state_dict_round_trip_continues_identically():
    config = dict(
        samples_per_insert=0.3, min_size_to_sample=7, error_buffer=2.0, max_insert_batch=3, max_sample_batch=2
    )
    original = SampleToInsertRatio(**config)
    rng = random.Random(1)
    simulate(original, [1, 3], [1, 2], budget=10**9, rng=rng, max_steps=200)
    assert original.samples > 0 and original.inserts > 0
    original.delete(2)
    state = original.state_dict()
    for copy in (pickle.loads(pickle.dumps(state)), json.loads(json.dumps(state))):
        restored = SampleToInsertRatio(**config)
        restored.load_state_dict(copy)
        assert restored.state_dict() == state
        rng_a, rng_b = random.Random(2), random.Random(2)
        trace_a = simulate(pickle.loads(pickle.dumps(original)), [1, 3], [1, 2], 10**9, rng_a, max_steps=300)
        trace_b = simulate(restored, [1, 3], [1, 2], 10**9, rng_b, max_steps=300)
        assert trace_a == trace_b


def test_counters_go_on_under_other_batch_bounds():
    limiter = SampleToInsertRatio(1.0, 10, 5.0, max_insert_batch=2, max_sample_batch=2)
    for _ in range(6):
        limiter.insert(2)
    limiter.sample(2)
    limiter.sample(1)
    wider = SampleToInsertRatio(1.0, 10, 9.0, max_insert_batch=4, max_sample_batch=4)
    wider.load_state_dict(limiter.state_dict())  # a resume with a larger loop.batch_size
    assert (wider.inserts, wider.samples) == (12, 3)


def test_load_state_dict_refuses_other_settings():
    state = SampleToInsertRatio(1.0, 10, 5.0).state_dict()
    with pytest.raises(ValueError, match=r"samples_per_insert is 1\.0 in the state and 2\.0 here"):
        SampleToInsertRatio(2.0, 10, 5.0).load_state_dict(state)
    with pytest.raises(ValueError, match=r"min_size_to_sample is 10 in the state and 12 here"):
        SampleToInsertRatio(1.0, 12, 5.0).load_state_dict(state)
    with pytest.raises(ValueError, match="kind is 'SampleToInsertRatio' in the state and 'MinSize' here"):
        MinSize(10).load_state_dict(state)
    with pytest.raises(ValueError, match=r"deletes \(3\) is more than inserts \(2\)"):
        SampleToInsertRatio(1.0, 10, 5.0).load_state_dict({**state, "inserts": 2, "deletes": 3})
    limiter = MinSize(3)
    limiter.insert(4)
    restored = MinSize(3)
    restored.load_state_dict(limiter.state_dict())
    assert (restored.inserts, restored.size, restored.can_sample(1)) == (4, 4, True)
    assert isinstance(restored, RateLimiter)


def test_a_retried_insert_is_stored_once():
    stored = []
    inserts = IdempotentInserts(stored.append)
    assert inserts.next_sequence_number("a") == 0
    assert inserts.insert("a", 0, "a0") is True
    assert inserts.insert("a", 0, "a0") is False  # the retry: acknowledged, not stored
    assert inserts.is_applied("a", 0) and not inserts.is_applied("a", 1)
    assert inserts.insert("a", 1, "a1") is True
    assert inserts.insert(7, 0, "w0") is True  # another writer numbers on its own
    assert inserts.insert("a", 0, "a0") is False  # an older retry too
    assert stored == ["a0", "a1", "w0"]
    assert inserts.writers == {"a": 1, 7: 0}


def test_a_gap_is_refused_naming_both_numbers():
    stored = []
    inserts = IdempotentInserts(stored.append)
    inserts.insert("a", 0, "a0")
    with pytest.raises(SequenceGapError, match="sent insert 3, but the next one expected is 1"):
        inserts.insert("a", 3, "a3")
    with pytest.raises(SequenceGapError, match="sent insert 2, but the next one expected is 0"):
        inserts.insert("new", 2, "x")  # a writer's first insert is 0
    assert stored == ["a0"]
    assert inserts.next_sequence_number("a") == 1 and inserts.writers == {"a": 0}


def test_a_failed_store_can_be_retried():
    stored, calls = [], []

    def flaky(batch):
        calls.append(batch)
        if len(calls) == 1:
            raise OSError("disk full")
        stored.append(batch)

    inserts = IdempotentInserts(flaky)
    with pytest.raises(OSError):
        inserts.insert("a", 0, "boom")
    assert inserts.next_sequence_number("a") == 0  # nothing recorded
    assert inserts.insert("a", 0, "boom") is True
    assert stored == ["boom"]


def test_idempotent_state_round_trip_and_forget():
    stored = []
    inserts = IdempotentInserts(stored.append)
    for i in range(3):
        inserts.insert("a", i, f"a{i}")
    restored = IdempotentInserts(stored.append)
    restored.load_state_dict(pickle.loads(pickle.dumps(inserts.state_dict())))
    assert restored.insert("a", 2, "a2") is False  # a retry that crosses the checkpoint
    assert restored.insert("a", 3, "a3") is True
    assert stored == ["a0", "a1", "a2", "a3"]
    restored.forget("a")
    assert restored.next_sequence_number("a") == 0
    with pytest.raises(ValueError, match="sequence_number must be an int >= 0, got -1"):
        restored.insert("a", -1, "x")
    with pytest.raises(TypeError, match="writer_id must be a str or an int"):
        restored.insert(1.5, 0, "x")
