"""MultiTaskSampler: mixed-task batches, exact once-per-epoch sharding, identical resume."""

from collections import Counter

import pytest

from attempt_dist.data import MultiTaskSampler


def run_epoch(sizes, world, bs, seed=3, epoch=0, **kw):
    per_rank = []
    for rank in range(world):
        s = MultiTaskSampler(sizes, bs, rank, world, seed, **kw)
        s.set_epoch(epoch)
        per_rank.append(list(s))
    return per_rank


def test_two_ranks_cover_every_example_exactly_once():
    sizes = [10, 6, 4]  # 20 items, global batch 2*5 = 10: no padding
    ranks = run_epoch(sizes, world=2, bs=5)
    assert len(ranks[0]) == len(ranks[1]) == 2
    seen = Counter(item for batches in ranks for batch in batches for item in batch)
    assert seen == Counter({(t, i): 1 for t, n in enumerate(sizes) for i in range(n)})


def test_uneven_total_pads_by_repeating_and_ranks_run_the_same_steps():
    sizes = [7, 4]  # 11 items, global batch 6 -> 2 steps, 1 repeat
    ranks = run_epoch(sizes, world=2, bs=3)
    assert [len(b) for b in ranks[0]] == [3, 3] and [len(b) for b in ranks[1]] == [3, 3]
    seen = Counter(item for batches in ranks for batch in batches for item in batch)
    assert set(seen) == {(t, i) for t, n in enumerate(sizes) for i in range(n)}
    assert sum(seen.values()) == 12 and sum(c - 1 for c in seen.values()) == 1
    dropped = run_epoch(sizes, world=2, bs=3, drop_last=True)
    assert len(dropped[0]) == len(dropped[1]) == 1


def test_batches_mix_tasks_and_are_identical_on_every_rank_seed():
    a = run_epoch([50, 50], world=1, bs=10)[0]
    b = run_epoch([50, 50], world=1, bs=10)[0]
    assert a == b
    assert any(len({t for t, _ in batch}) == 2 for batch in a)
    c = run_epoch([50, 50], world=1, bs=10, epoch=1)[0]
    assert a != c  # a new epoch reshuffles


def test_resume_mid_epoch_continues_identically():
    sizes = [13, 9, 5]
    full = MultiTaskSampler(sizes, 4, 1, 2, seed=11)
    full.set_epoch(2)
    reference = list(full)
    killed = MultiTaskSampler(sizes, 4, 1, 2, seed=11)
    killed.set_epoch(2)
    it = iter(killed)
    head = [next(it) for _ in range(2)]
    state = killed.state_dict()
    assert state["epoch"] == 2 and state["position"] == 2
    resumed = MultiTaskSampler(sizes, 4, 1, 2, seed=11)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # the training loop calls this again on resume: it must keep the place
    assert head + list(resumed) == reference
    assert resumed.state_dict()["epoch"] == 3 and resumed.state_dict()["position"] == 0


def test_resume_with_other_settings_is_refused():
    s = MultiTaskSampler([5, 5], 2, 0, 1, seed=1)
    state = s.state_dict()
    other = MultiTaskSampler([5, 6], 2, 0, 1, seed=1)
    with pytest.raises(Exception, match="cannot resume"):
        other.load_state_dict(state)


def test_cap_and_temperature_change_the_mixture():
    capped = MultiTaskSampler([100, 10], 10, 0, 1, seed=0, cap=20)
    assert capped.counts() == [20, 10]
    items = [x for b in capped for x in b]
    assert Counter(t for t, _ in items) == Counter({0: 20, 1: 10})
    assert len({i for t, i in items if t == 0}) == 20  # without replacement
    hot = MultiTaskSampler([90, 10], 10, 0, 1, seed=0, temperature=2.0)
    # weights sqrt(90) : sqrt(10) = 3 : 1 over 100 items -> 75 / 25 (task 1 cycles its 10)
    assert hot.counts() == [75, 25]
    items = [x for b in hot for x in b]
    assert Counter(Counter(i for t, i in items if t == 1).values()) == Counter({3: 5, 2: 5})


def test_no_shuffle_keeps_task_order():
    s = MultiTaskSampler([3, 2], 2, 0, 1, seed=0, shuffle=False)
    assert list(s) == [[(0, 0), (0, 1)], [(0, 2), (1, 0)], [(1, 1), (0, 0)]]


# --- length grouping ------------------------------------------------------------------------------
def _lengths(sizes, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return [list(rng.integers(5, 500, size=n)) for n in sizes]


def _padding(batches, lengths):
    padded = sum(len(b) * max(lengths[t][i] for t, i in b) for b in batches)
    real = sum(lengths[t][i] for b in batches for t, i in b)
    return 1 - real / padded


def test_length_grouping_keeps_the_epoch_and_cuts_padding():
    sizes = [300, 200, 100]
    lengths = _lengths(sizes)
    plain = run_epoch(sizes, world=2, bs=8, epoch=1)
    grouped = run_epoch(sizes, world=2, bs=8, epoch=1, lengths=lengths, group_by_length=True, mega_batch=10)
    # The same items, the same number of steps on every rank, every example once (606 = 38 * 16 - 2 repeats).
    assert [len(r) for r in grouped] == [len(r) for r in plain] == [38, 38]
    items = lambda ranks: Counter(item for batches in ranks for b in batches for item in b)  # noqa: E731
    assert items(grouped) == items(plain)
    # Within a global batch (both ranks' halves) lengths are close: a mega-batch of 160 sorted items.
    assert _padding(grouped[0], lengths) < 0.1 < 0.4 < _padding(plain[0], lengths)
    # Tasks still meet inside batches, and the long batches are not all at the start.
    assert any(len({t for t, _ in b}) > 1 for b in grouped[0])
    maxima = [max(lengths[t][i] for t, i in b) for b in grouped[0]]
    assert maxima != sorted(maxima, reverse=True)


def test_length_grouping_is_seeded_and_resumes_mid_epoch_identically():
    sizes = [40, 25, 17]
    lengths = _lengths(sizes, seed=1)
    kw = dict(lengths=lengths, group_by_length=True, mega_batch=3)
    full = MultiTaskSampler(sizes, 4, 1, 2, seed=11, **kw)
    full.set_epoch(2)
    reference = list(full)
    assert reference == run_epoch(sizes, world=2, bs=4, seed=11, epoch=2, **kw)[1]
    assert reference != run_epoch(sizes, world=2, bs=4, seed=12, epoch=2, **kw)[1]
    killed = MultiTaskSampler(sizes, 4, 1, 2, seed=11, **kw)
    killed.set_epoch(2)
    it = iter(killed)
    head = [next(it) for _ in range(5)]
    resumed = MultiTaskSampler(sizes, 4, 1, 2, seed=11, **kw)
    resumed.load_state_dict(killed.state_dict())
    resumed.set_epoch(2)
    assert head + list(resumed) == reference
    plain = MultiTaskSampler(sizes, 4, 1, 2, seed=11)
    with pytest.raises(Exception, match="cannot resume.*group_by_length"):
        plain.load_state_dict(killed.state_dict())


def test_length_grouping_needs_every_length():
    with pytest.raises(ValueError, match="input length of every example"):
        MultiTaskSampler([3, 2], 2, 0, 1, seed=0, lengths=[[1, 2, 3]], group_by_length=True)


def test_resume_with_half_the_micro_batch_continues_at_the_next_example():
    """An out-of-memory re-plan resumes with half the micro-batch (twice the accumulation): the
    examples still to come in the epoch are exactly those the saved run had left, on every rank."""
    sizes, world = [13, 9, 10], 2  # 32 examples: no padding at the epoch's end with either size
    full = [MultiTaskSampler(sizes, 4, rank, world, seed=11) for rank in range(world)]
    for s in full:
        s.set_epoch(1)
    reference = [list(s) for s in full]
    states = []
    for rank in range(world):
        killed = MultiTaskSampler(sizes, 4, rank, world, seed=11)
        killed.set_epoch(1)
        it = iter(killed)
        next(it), next(it), next(it)
        states.append(killed.state_dict())
    rest = []
    for rank, state in enumerate(states):
        resumed = MultiTaskSampler(sizes, 2, rank, world, seed=11)
        resumed.load_state_dict(state)
        resumed.set_epoch(1)
        assert resumed.state_dict()["position"] == 6
        rest.append(list(resumed))
    # Global batch s of micro-batch 4 holds the epoch's items [8s, 8s + 8): after 3 of them both
    # runs hand out the same items, in the same order, to the ranks together.
    left = Counter(item for batches in reference for batch in batches[3:] for item in batch)
    assert Counter(item for batches in rest for batch in batches for item in batch) == left
    # A position that does not end on a whole micro-batch of the new size, or length grouping
    # (its order depends on the batch), cannot continue.
    odd = MultiTaskSampler(sizes, 4, 0, 1, seed=11)
    odd.position = 1
    with pytest.raises(Exception, match="cannot resume the data order: saved batch_size=4 but this run has 3"):
        MultiTaskSampler(sizes, 3, 0, 1, seed=11).load_state_dict(odd.state_dict())
    lengths = [list(range(n)) for n in sizes]
    grouped = MultiTaskSampler(sizes, 4, 0, 1, seed=11, lengths=lengths, group_by_length=True)
    with pytest.raises(Exception, match="cannot resume the data order: saved batch_size=4"):
        MultiTaskSampler(sizes, 2, 0, 1, seed=11, lengths=lengths, group_by_length=True).load_state_dict(
            grouped.state_dict())
