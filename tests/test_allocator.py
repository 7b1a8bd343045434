"""The caching allocator's simulation (vramlint.memory.allocator) on hand-built event streams:
each expected figure follows from a rule of c10/cuda/CUDACachingAllocator.cpp."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from vramlint.analysis.api import analyze_source
from vramlint.memory.allocator import FREE, Allocator, AllocatorConfig, round_size, simulate
from vramlint.memory.estimate import MemoryEstimate
from vramlint.memory.reserved import Workload, largest_batch, run
from vramlint.settings import InputSpec, Settings

KiB, MiB = 1 << 10, 1 << 20


def test_requests_are_rounded_to_512_bytes() -> None:
    assert [round_size(n) for n in (1, 512, 513, 1000)] == [512, 512, 1024, 1024]
    r = simulate([(1, 1), (2, 513)])
    assert r.max_allocated == 512 + 1024


def test_small_requests_share_2_mib_segments() -> None:
    """Up to 1 MiB: the small pool, 2 MiB segments (kSmallBuffer), split down to 512 bytes."""
    r = simulate([(k, 256 * KiB) for k in range(8)])  # 8 x 256 KiB = one 2 MiB segment
    assert r.max_reserved == 2 * MiB
    r = simulate([(k, 256 * KiB) for k in range(9)])
    assert r.max_reserved == 4 * MiB
    r = simulate([(1, 1 * MiB), (2, 1 * MiB), (3, 512)])  # a 1 MiB request is still small
    assert r.max_reserved == 4 * MiB


def test_requests_of_1_to_10_mib_get_a_20_mib_segment() -> None:
    """kMinLargeAlloc: under 10 MiB, a kLargeBuffer (20 MiB) segment, split for later requests."""
    r = simulate([(1, 3 * MiB), (2, 3 * MiB), (3, 3 * MiB)])
    assert r.max_reserved == 20 * MiB
    # 10 MiB and more: rounded up to 2 MiB (kRoundLarge), a segment of its own
    r = simulate([(1, 10 * MiB + 1)])
    assert r.max_reserved == 12 * MiB


def test_a_large_remainder_of_1_mib_or_less_is_not_split_off() -> None:
    """should_split, large pool: the rest stays a free block only if it is more than 1 MiB."""
    a = Allocator()
    assert a.malloc(1, 12 * MiB)  # its own 12 MiB segment
    a.free(1)
    assert a.malloc(2, 11 * MiB)  # takes the 12 MiB block whole (rest exactly 1 MiB)
    assert a.allocated == 12 * MiB
    a.free(2)
    assert a.malloc(3, 10 * MiB)  # rest 2 MiB: split
    assert a.allocated == 10 * MiB and a.reserved == 12 * MiB


def test_best_fit_takes_the_smallest_free_block() -> None:
    events = [(1, 12 * MiB), (2, 20 * MiB), (3, 16 * MiB), (1, FREE), (2, FREE), (3, FREE),
              (4, 14 * MiB), (5, 18 * MiB), (6, 12 * MiB)]
    r = simulate(events)
    # 14 MiB goes to the 16 MiB block, 18 MiB to the 20 MiB one, 12 MiB to the 12 MiB one: nothing new
    assert r.max_reserved == 48 * MiB


def test_freed_neighbours_merge() -> None:
    """Three 6 MiB blocks of one 20 MiB segment, freed: one 20 MiB free block that fits 19 MiB."""
    events = [(1, 6 * MiB), (2, 6 * MiB), (3, 6 * MiB), (2, FREE), (1, FREE), (3, FREE), (4, 19 * MiB)]
    r = simulate(events)
    assert r.max_reserved == 20 * MiB


def test_fragmentation_needs_a_new_segment() -> None:
    """Freeing the middle block leaves 6 MiB free plus the 2 MiB tail: a 7 MiB request needs a new segment."""
    events = [(1, 6 * MiB), (2, 6 * MiB), (3, 6 * MiB), (2, FREE), (4, 7 * MiB)]
    assert simulate(events).max_reserved == 40 * MiB


def test_at_the_limit_cached_segments_are_released_and_the_request_retried() -> None:
    events = [(1, 30 * MiB), (1, FREE), (2, 40 * MiB)]
    assert simulate(events).max_reserved == 70 * MiB  # no limit: the 30 MiB block stays cached
    r = simulate(events, limit=64 * MiB)
    assert r.ok and r.max_reserved == 40 * MiB and r.releases == 1
    # a segment with a block still allocated cannot be released: out of memory
    r = simulate([(1, 4 * MiB), (2, 4 * MiB), (1, FREE), (3, 50 * MiB)], limit=64 * MiB)
    assert not r.ok and r.oom_at == 3


def test_the_limit_counts_whole_segments() -> None:
    """A 1 MiB request reserves 2 MiB; an 11 MiB request 12 MiB: 63 MiB allowed, 62 reserved, out of memory."""
    r = simulate([(1, 50 * MiB), (2, 11 * MiB), (3, 1 * MiB)], limit=63 * MiB)
    assert not r.ok and r.oom_at == 2


def test_max_split_size_keeps_large_blocks_whole() -> None:
    conf = AllocatorConfig.parse("max_split_size_mb:64")
    events = [(1, 100 * MiB), (1, FREE), (2, 30 * MiB)]
    assert simulate(events).max_reserved == 100 * MiB  # default: split
    assert simulate(events, config=conf).max_reserved == 130 * MiB  # no oversize block for a small request
    # an oversize request takes an oversize block less than 20 MiB larger, whole
    r = simulate([(1, 100 * MiB), (1, FREE), (2, 90 * MiB)], config=conf)
    assert r.max_reserved == 100 * MiB and r.max_allocated == 100 * MiB
    r = simulate([(1, 100 * MiB), (1, FREE), (2, 70 * MiB)], config=conf)
    assert r.max_reserved == 170 * MiB


def test_max_split_size_releases_one_oversize_block_at_the_limit() -> None:
    conf = AllocatorConfig.parse("max_split_size_mb:64")
    r = simulate([(1, 100 * MiB), (2, 80 * MiB), (1, FREE), (2, FREE), (3, 30 * MiB), (4, 110 * MiB)],
                 limit=200 * MiB, config=conf)
    # the 30 MiB request: no new segment within 200 MiB; the smallest oversize block (80 MiB) is
    # released. The 110 MiB request: the 100 MiB block is not enough, released anyway, then retried.
    assert r.ok and r.max_reserved == 180 * MiB and r.reserved == 140 * MiB


def test_expandable_segments_map_pages_at_the_end() -> None:
    """expandable_segments:True: one segment grows by 20 MiB pages (large pool): three 12 MiB
    tensors take 40 MiB, not 3 x 12 MiB segments; a freed block is reused and split."""
    conf = AllocatorConfig(expandable_segments=True)
    r = simulate([(1, 12 * MiB), (2, 12 * MiB), (3, 12 * MiB)], config=conf)
    assert r.max_reserved == 40 * MiB
    r = simulate([(1, 12 * MiB), (2, 12 * MiB), (3, 12 * MiB)])
    assert r.max_reserved == 36 * MiB
    r = simulate([(1, 12 * MiB), (2, 12 * MiB), (1, FREE), (3, 5 * MiB), (4, 5 * MiB), (5, 2 * MiB)], config=conf)
    assert r.max_reserved == 40 * MiB


def test_expandable_segments_unmap_free_pages_at_the_limit() -> None:
    conf = AllocatorConfig(expandable_segments=True)
    events = [(1, 40 * MiB), (2, 20 * MiB), (1, FREE), (3, 60 * MiB)]
    r = simulate(events, limit=100 * MiB, config=conf)
    assert r.ok and r.releases == 1 and r.max_reserved == 80 * MiB


def test_max_split_size_never_releases_a_block_of_an_expandable_segment() -> None:
    """release_available_cached_blocks skips expandable segments' blocks (torch's release_block
    asserts it is never given one): with both options, a request past the limit unmaps the free
    pages, and here still does not fit. (The oversize block used to be released as a segment of
    its own while the pool's end still pointed at it: an IndexError on the next mapping.)"""
    conf = AllocatorConfig.parse("expandable_segments:True,max_split_size_mb:200")
    events = [(1, 256 * MiB), (1, FREE), (2, 292 * MiB)]
    r = simulate(events, limit=260 * MiB, config=conf)
    assert not r.ok and r.oom_at == 2 and r.releases == 1 and r.max_reserved == 260 * MiB
    # With expandable segments on, max_split_size changes nothing in this model (every block is
    # of an expandable segment): the same run without it.
    plain = simulate(events, limit=260 * MiB, config=AllocatorConfig(expandable_segments=True))
    assert (r.oom_at, r.releases, r.max_reserved, r.reserved) == (plain.oom_at, plain.releases, plain.max_reserved,
                                                                   plain.reserved)


def test_config_parsing() -> None:
    c = AllocatorConfig.parse("expandable_segments:True, max_split_size_mb:128,garbage_collection_threshold:0.6")
    assert c.expandable_segments and c.max_split_size == 128 * MiB
    assert c.describe() == "expandable_segments:True,max_split_size_mb:128"
    for bad in ("max_split_size_mb:10", "max_split_size_mb:x", "expandable_segments:yes"):
        with pytest.raises(ValueError):
            AllocatorConfig.parse(bad)


@pytest.mark.parametrize("conf", ["", "max_split_size_mb:64", "expandable_segments:True",
                                  "expandable_segments:True,max_split_size_mb:200"])
def test_random_streams_keep_the_allocators_invariants(conf: str) -> None:
    """Seeded random streams (small, large and oversize requests, frees in any order) at limits
    around their own peaks: no run raises, nothing is reserved past the limit, the allocated
    peak is within the reserved one, and a limit at or above the run's own reserved peak changes
    nothing. (This found the IndexError of expandable segments with max_split_size.)"""
    import random

    config = AllocatorConfig.parse(conf)
    rng = random.Random(conf)
    for _ in range(150):
        events: list[tuple[int, int]] = []
        live: list[int] = []
        for key in range(rng.randint(3, 60)):
            if live and rng.random() < 0.45:
                events.append((live.pop(rng.randrange(len(live))), FREE))
            else:
                events.append((key, rng.choice([rng.randint(1, 4 * KiB), rng.randint(1, MiB), rng.randint(MiB, 30 * MiB),
                                                rng.randint(100 * MiB, 300 * MiB)])))
                live.append(key)
        free = simulate(events, config=config)
        assert free.ok and free.max_allocated <= free.max_reserved
        for limit in (free.max_reserved, free.max_reserved + 20 * MiB, free.max_allocated,
                      rng.randint(free.max_allocated // 2, free.max_reserved)):
            r = simulate(events, limit=limit, config=config)
            assert r.max_reserved <= limit and r.reserved <= limit and r.max_allocated <= r.max_reserved
            if limit >= free.max_reserved:
                assert (r.ok, r.max_reserved, r.max_allocated, r.releases) == (True, free.max_reserved,
                                                                               free.max_allocated, 0)


def test_a_long_stream_runs_quickly() -> None:
    """10^5 events of mixed sizes, many free blocks at once: finishes in seconds (measured 0.6 s on a
    loaded 2-core machine; the calibration models' runs are 10^3-10^4 events, 1-12 ms)."""
    events: list[tuple[int, int]] = []
    for i in range(50_000):
        events.append((i, (i * 7919) % (30 * MiB) + 1))
        if i >= 20:
            events.append((i - 20, FREE))
    t = time.perf_counter()
    r = simulate(events)
    assert r.ok and time.perf_counter() - t < 30


# ---------------------------------------------------------------------- PYTORCH_CUDA_ALLOC_CONF of the analysed code
MODEL = """\
import os
{env}
import torch
from torch import nn
model = nn.Sequential(nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 4096))
x = torch.randn(300, 4096)
y = model(x)
"""


def _memory(tmp_path: Path, env: str = "", **settings: Any) -> MemoryEstimate:
    fa = analyze_source(str(tmp_path / "m.py"), MODEL.format(env=env), Settings(memory=True, **settings))
    (m,) = fa.models
    assert m.memory is not None
    return m.memory


def test_the_allocator_configuration_comes_from_the_code(tmp_path: Path) -> None:
    plain = _memory(tmp_path)
    assert plain.allocator == AllocatorConfig() and not any("caching allocator" in n for n in plain.notes)
    for env in ('os.environ["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"',
                'os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")'):
        e = _memory(tmp_path, env)
        assert e.allocator == AllocatorConfig(expandable_segments=True)
        assert "caching allocator: expandable_segments:True (PYTORCH_CUDA_ALLOC_CONF from the code's os.environ)" \
            in e.notes
        assert e.train_peak == plain.train_peak  # what is allocated does not change, what is reserved does
        assert e.workload is not None and e.max_reserved == run(e.workload, config=e.allocator).max_reserved
        assert e.max_reserved != plain.max_reserved


def test_the_allocator_configuration_from_the_environment_setting(tmp_path: Path) -> None:
    e = _memory(tmp_path, environment=(("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:64"),))
    assert e.allocator == AllocatorConfig(max_split_size=64 * MiB)
    assert "caching allocator: max_split_size_mb:64 (PYTORCH_CUDA_ALLOC_CONF from the `environment` setting)" \
        in e.notes


def test_a_malformed_allocator_configuration_is_ignored_with_a_note(tmp_path: Path) -> None:
    e = _memory(tmp_path, 'os.environ["PYTORCH_CUDA_ALLOC_CONF"] = "max_split_size_mb:8"')
    assert e.allocator == AllocatorConfig()
    assert any(n.startswith("PYTORCH_CUDA_ALLOC_CONF='max_split_size_mb:8' from the code's os.environ ignored: "
                            "max_split_size_mb must be more than 20") for n in e.notes), e.notes


# ---------------------------------------------------------------------- the run the allocator replays (reserved.py)
def _work(batch: int) -> Workload:
    """100 MiB of weights, a 12 MiB-per-sample activation and its gradient, a 1 MiB parameter
    gradient (key 7), Adam-like state and one step temporary."""
    forward = [(1, 12 * MiB * batch)]
    backward = [(7, 1 * MiB), (2, 12 * MiB * batch), (1, FREE), (2, FREE)]
    return Workload([100 * MiB], [], [3 * MiB, 3 * MiB], [3 * MiB], forward, backward, {7})


def test_the_run_is_three_iterations_with_lazy_state_and_zero_grad() -> None:
    ev = _work(1).events()
    setup, workspace, state, step = 1 << 40, 1 << 41, 1 << 42, 1 << 43
    one = [(1, 12 * MiB), (7, MiB), (2, 12 * MiB), (1, FREE), (2, FREE)]
    step_events = [(step, 3 * MiB), (step, FREE)]
    assert ev == [(setup, 100 * MiB), *one, (state, 3 * MiB), (state + 1, 3 * MiB), *step_events,
                  (7, FREE), *one, *step_events, (7, FREE), *one, *step_events]
    assert workspace not in {k for k, _ in ev}


def test_a_replay_is_remembered_by_the_runs_content_and_given_as_a_copy() -> None:
    """`run` remembers its last replays (an editor's edits mostly leave the estimated run as it
    was): the same run gives the replay's own result, another run (one allocation 1 MiB larger)
    or another limit is replayed, and a caller changing its result changes no later one."""
    from vramlint.memory import reserved

    reserved._RUNS.clear()
    first = run(_work(2), 400 * MiB)
    assert first == simulate(_work(2).events(), 400 * MiB) and len(reserved._RUNS) == 1
    first.max_reserved = -1
    again = run(_work(2), 400 * MiB)
    assert again == simulate(_work(2).events(), 400 * MiB) and len(reserved._RUNS) == 1
    larger = _work(2)
    larger.forward = [(1, 25 * MiB)]
    assert run(larger, 400 * MiB) == simulate(larger.events(), 400 * MiB) != again
    assert run(_work(9), 400 * MiB).oom_at == 13 and not run(_work(9), 400 * MiB).ok
    assert len(reserved._RUNS) == 3


def test_the_largest_batch_is_the_last_that_runs_at_the_limit() -> None:
    """Batch b: the forward's 12b MiB activation and backward's 12b MiB gradient get a segment
    each in the first iteration; the optimizer state and the step's temporary, created after
    backward, split one of them (best fit), so in the second iteration the gradient no longer fits
    there and needs a third 12b MiB segment, which no release can make room for (no cached segment
    is wholly free): 100 MiB of weights + 2 MiB (the 1 MiB parameter gradient's small segment)
    + 36b MiB within 400 MiB -> 8."""
    assert run(_work(8), 400 * MiB).ok and not run(_work(9), 400 * MiB).ok
    assert run(_work(9), 400 * MiB).oom_at == 13  # the second iteration's activation gradient
    assert largest_batch(_work(1), 1, _work(2), 2, 400 * MiB) == 8


def test_the_largest_batch_keeps_the_floor_above_the_allocated_peak() -> None:
    """Weights and one activation: nothing fragments, the run fits while 100 + 12b <= 400 MiB (25);
    with a 2% floor above the allocated peak, 24."""
    def work(b: int) -> Workload:
        return Workload([100 * MiB], [], [], [], [(1, 12 * MiB * b), (1, FREE)], [])

    assert largest_batch(work(1), 1, work(2), 2, 400 * MiB) == 25
    assert largest_batch(work(1), 1, work(2), 2, 400 * MiB, floor=0.02) == 24


def test_traces_that_do_not_pair_give_no_answer() -> None:
    other = _work(2)
    other.forward = [*other.forward, (9, MiB), (9, FREE)]  # an op the other batch does not run
    assert not _work(1).pairs(other) and largest_batch(_work(1), 1, other, 2, 400 * MiB) is None


# ---------------------------------------------------------------------- the search's shared prefix
CNN = """\
import torch
from torch import nn
model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                      nn.Flatten(), nn.Linear(128, 10))
y = model(torch.randn(64, 3, 224, 224))
"""


def _estimated_workloads() -> list[Workload]:
    """The training runs the estimate replays for the bundled examples (each thousands of events,
    with releases at the search's limits)."""
    root = Path(__file__).resolve().parents[1] / "examples"
    gpt = Settings(memory=True, inputs=(InputSpec((128,), "int64"),), batch_size=8)  # its sequence length
    sources = [(root / "mlp.py", Settings(memory=True), None), (root / "gpt.py", gpt, None),
               (root / "cnn.py", Settings(memory=True), CNN)]
    works = []
    for path, settings, text in sources:
        fa = analyze_source(str(path), text if text is not None else path.read_text(), settings)
        works += [m.memory.workload for m in fa.models if m.memory is not None and m.memory.workload is not None]
    assert len(works) >= 3
    return works


@pytest.mark.parametrize("config", [AllocatorConfig(), AllocatorConfig(max_split_size=64 * MiB),
                                    AllocatorConfig(expandable_segments=True)], ids=["default", "max_split", "expandable"])
def test_runs_from_the_searchs_prefix_equal_runs_from_the_start(config: AllocatorConfig) -> None:
    """`reserved_need` replays the part every limit of its search shares once (up to the first
    request that would reserve past the search's lowest limit) and goes on from copies of that
    state: each run's result is the whole replay's, at every limit from the lowest to beyond the
    run without a limit, and the search's answer is the plain binary search's."""
    from vramlint.memory import reserved

    for work in _estimated_workloads():
        free = simulate(work.events(), config=config)
        lo = free.max_allocated // (2 * MiB) * (2 * MiB)
        prefix = reserved.Prefix(work, lo, config)
        results = []
        for limit in range(lo, free.max_reserved + 4 * MiB, max(MiB, (free.max_reserved - lo) // 40)):
            reserved._RUNS.clear()
            results.append(run(work, limit, config, prefix))
            assert results[-1] == simulate(work.events(), limit, config), limit
        assert any(r.releases for r in results) and any(r.ok for r in results)  # the limits reached something
        reserved._RUNS.clear()
        step = max(2 * MiB, free.max_allocated // 500 // (2 * MiB) * (2 * MiB))
        lo, hi = free.max_allocated // step * step, -(-free.max_reserved // step) * step
        while hi - lo > step:
            mid = (lo + hi) // 2 // step * step
            lo, hi = (lo, mid) if simulate(work.events(), mid, config).ok else (mid, hi)
        assert reserved.reserved_need(work, config, free) == hi


def _state(a: Allocator) -> tuple[Any, ...]:
    blocks = sorted((b.addr, b.size, b.allocated, b.prev.addr if b.prev else None, b.next.addr if b.next else None)
                    for b in a._by_addr.values())
    return (a.limit, a.reserved, a.allocated, a.max_reserved, a.max_allocated, blocks,
            {k: b.addr for k, b in a._live.items()}, {k: list(v) for k, v in a._free.items()})


def test_a_copied_allocator_state_is_independent() -> None:
    """`Allocator.copy`: the same blocks, links, free lists and counters under another limit; what
    either does later leaves the other as it was."""
    a = Allocator()
    for k, size in enumerate((3 * MiB, 12 * MiB, 300 * KiB, 25 * MiB, 3 * MiB)):
        assert a.malloc(k, size)
    a.free(1)
    a.free(2)
    b = a.copy(a.reserved)
    assert _state(b)[1:] == _state(a)[1:] and b.limit == a.reserved
    assert not any(x is y for x in b._by_addr.values() for y in a._by_addr.values())
    before = _state(a)
    b.free(0)
    assert not b.malloc(9, 30 * MiB)  # no room under b's limit (nothing cached is wholly free)
    assert _state(a) == before
    after_b = _state(b)
    assert a.malloc(9, 30 * MiB) and a.malloc(10, 1 * MiB)
    assert _state(b) == after_b


def test_replays_leave_nothing_for_the_garbage_collector() -> None:
    """A segment's blocks are a doubly linked list; a finished replay unlinks them, so that the
    editor's replays (several per edit) are freed at once instead of making the collector's
    collections longer and more frequent. With automatic collection off, a search for the least
    limit and a largest-batch search leave no unreachable object behind."""
    import gc

    from vramlint.memory import reserved

    works = _estimated_workloads()
    gc.collect()
    gc.disable()
    try:
        for work in works:
            reserved._RUNS.clear()
            free = run(work)
            assert reserved.reserved_need(work, None, free) > 0
        assert largest_batch(_work(1), 1, _work(2), 2, 400 * MiB) == 8
        assert gc.collect() == 0
    finally:
        gc.enable()
