"""PyTorch's CUDA caching allocator, simulated on a stream of allocations and frees.

What `torch.cuda.max_memory_reserved()` reports, and whether a request fails at a limit, depend on
more than the allocated bytes: the allocator reserves whole segments from the driver and caches
freed blocks. The rules below follow c10/cuda/CUDACachingAllocator.cpp (constants in
c10/core/AllocatorConfig.h, namespace c10::CachingAllocator):

- `round_size`: every request is rounded up to `kMinBlockSize` (512 bytes).
- Requests of at most `kSmallSize` (1 MiB) come from the small pool, the others from the large pool
  (`get_pool`).
- `get_free_block`: the smallest free block of the pool that is large enough (blocks are ordered by
  size, then address: best fit, the lowest address first). With `max_split_size_mb`, a request
  under the limit never takes a block at or above it, and a request at or above it takes a block
  only if the block is less than `kLargeBuffer` (20 MiB) larger.
- `get_allocation_size`: without a fitting free block a new segment is reserved: `kSmallBuffer`
  (2 MiB) for small requests, `kLargeBuffer` (20 MiB) for requests under `kMinLargeAlloc` (10 MiB),
  else the size rounded up to `kRoundLarge` (2 MiB).
- `should_split`: the rest of a block stays a free block if it is at least `kMinBlockSize` (small
  pool, or expandable segments), or if it is more than `kSmallSize` and the request is under
  `max_split_size` (large pool); otherwise the request takes the whole block.
- `free_block` / `try_merge_blocks`: a freed block merges with its free neighbours in the segment.
- `alloc_block` fails when the reserved bytes plus the new segment exceed the limit
  (`set_per_process_memory_fraction`, or the card). `malloc` then calls
  `release_available_cached_blocks` (which does something only with `max_split_size_mb`: it frees
  cached oversize segments, the smallest one large enough, else the largest ones until enough) and
  `release_cached_blocks` (every cached segment that is wholly free), retrying `alloc_block` after
  each; the request fails (OutOfMemoryError) only if the last retry fails.
- `expandable_segments:True` (Note [Expandable Segments]): one segment per pool whose physical
  pages are mapped as needed (`find_expandable_block`: `segment_size = pool->is_small ?
  kSmallBuffer : kLargeBuffer`, 2 MiB pages for the small pool, 20 MiB for the large pool), new
  memory at the segment's end; every split rest is kept; at the limit the pages wholly inside free
  blocks are unmapped (`release_cached_blocks` -> `unmap_block`). Here new blocks are always placed
  at the end after such a release (torch may also refill unmapped holes): that can only ask for more.

One stream (the default) is simulated; events of autograd's backward thread use the same stream.
The simulation is pure Python, without torch; `simulate` runs ~10^5 events in well under a second.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# c10/core/AllocatorConfig.h (c10::CachingAllocator), used by CUDACachingAllocator.cpp
kMinBlockSize = 512  # all sizes are rounded to at least 512 bytes
kSmallSize = 1 << 20  # largest "small" allocation is 1 MiB
kSmallBuffer = 2 << 20  # "small" allocations are packed in 2 MiB blocks
kLargeBuffer = 20 << 20  # "large" allocations may be packed in 20 MiB blocks
kMinLargeAlloc = 10 << 20  # allocations between 1 and 10 MiB may use kLargeBuffer
kRoundLarge = 2 << 20  # round up large allocations to 2 MiB
NO_LIMIT = 1 << 62  # max_split_size's default (std::numeric_limits<size_t>::max()), no cap

# A free block in its pool's sorted list: size << _ADDR_BITS | address, so that the list is in
# (size, address) order (BlockComparatorSize) as plain ints, which bisect compares faster than
# tuples. Addresses stay far below 2**64 (segments start at 2**50, 1 GiB apart).
_ADDR_BITS = 64
_ADDR_MASK = (1 << _ADDR_BITS) - 1

# One event: (key, size) allocates `size` bytes under `key`; (key, FREE) frees the key's block.
Event = tuple[int, int]
FREE = -1


@dataclass(frozen=True)
class AllocatorConfig:
    """PYTORCH_CUDA_ALLOC_CONF's options that change where blocks go."""

    max_split_size: int = NO_LIMIT  # max_split_size_mb, in bytes
    expandable_segments: bool = False

    @staticmethod
    def parse(text: str) -> AllocatorConfig:
        """`expandable_segments:True,max_split_size_mb:128` (other options are ignored: they do
        not change what is reserved in a training loop). Raises ValueError on a malformed value."""
        max_split, expandable = NO_LIMIT, False
        for part in text.split(","):
            key, _, value = part.strip().partition(":")
            key, value = key.strip(), value.strip()
            if key == "max_split_size_mb":
                mb = int(value)
                if mb <= 20:  # CUDAAllocatorConfig: "max_split_size_mb too small, must be > 20"
                    raise ValueError(f"max_split_size_mb must be more than 20, not {mb}")
                max_split = mb << 20
            elif key == "expandable_segments":
                if value not in ("True", "False"):
                    raise ValueError(f"expandable_segments must be True or False, not {value!r}")
                expandable = value == "True"
        return AllocatorConfig(max_split, expandable)

    def describe(self) -> str:
        parts = []
        if self.expandable_segments:
            parts.append("expandable_segments:True")
        if self.max_split_size != NO_LIMIT:
            parts.append(f"max_split_size_mb:{self.max_split_size >> 20}")
        return ",".join(parts) or "default"


def round_size(size: int) -> int:
    """CUDACachingAllocator.cpp `round_size` (without roundup_power2_divisions)."""
    return kMinBlockSize if size < kMinBlockSize else -(-size // kMinBlockSize) * kMinBlockSize


def allocation_size(size: int) -> int:
    """CUDACachingAllocator.cpp `get_allocation_size`: the segment a request reserves."""
    if size <= kSmallSize:
        return kSmallBuffer
    if size < kMinLargeAlloc:
        return kLargeBuffer
    return -(-size // kRoundLarge) * kRoundLarge


class _Block:
    __slots__ = ("addr", "size", "allocated", "prev", "next", "small", "segment")

    def __init__(self, addr: int, size: int, small: bool, segment: int) -> None:
        self.addr = addr
        self.size = size
        self.allocated = False
        self.prev: _Block | None = None
        self.next: _Block | None = None
        self.small = small
        self.segment = segment  # the segment's index (-1: an expandable segment)


@dataclass
class Result:
    """What a run of events did."""

    max_reserved: int  # the most the allocator reserved (torch.cuda.max_memory_reserved())
    max_allocated: int  # the most allocated, in blocks (torch.cuda.max_memory_allocated())
    reserved: int  # reserved at the end
    oom_at: int = -1  # index of the event that failed (-1: none did)
    oom_size: int = 0  # its request, rounded
    releases: int = 0  # how many times cached segments were released to retry a request

    @property
    def ok(self) -> bool:
        return self.oom_at < 0


@dataclass
class Allocator:
    """The caching allocator's state. `limit`: the most it may reserve (the card less what is
    outside the allocator, or a memory fraction); `config`: PYTORCH_CUDA_ALLOC_CONF."""

    limit: int = NO_LIMIT
    config: AllocatorConfig = field(default_factory=AllocatorConfig)
    reserved: int = 0
    allocated: int = 0
    max_reserved: int = 0
    max_allocated: int = 0
    releases: int = 0
    # free blocks per pool, ordered by (size, address): BlockComparatorSize (see _ADDR_BITS)
    _free: dict[bool, list[int]] = field(default_factory=lambda: {True: [], False: []})
    _by_addr: dict[int, _Block] = field(default_factory=dict)
    _live: dict[int, _Block] = field(default_factory=dict)  # key -> its allocated block
    _next_addr: int = 1 << 50  # segments' addresses (expandable ones: below)
    _segments: int = 0
    # expandable segments, per pool: the end of its address space, and the block that ends there
    _vend: dict[bool, int] = field(default_factory=lambda: {True: kLargeBuffer << 18, False: kLargeBuffer << 19})
    _tail: dict[bool, _Block | None] = field(default_factory=dict)

    # ------------------------------------------------------------------ the public operations
    def malloc(self, key: int, size: int) -> bool:
        """Allocate `size` bytes under `key`; False when the allocator would raise OutOfMemoryError."""
        # One function for the whole request, as plain as it can be: a run replays thousands of
        # events, and the editor's search for the least limit replays it several times per edit.
        size = kMinBlockSize if size < kMinBlockSize else -(-size // kMinBlockSize) * kMinBlockSize
        small = size <= kSmallSize
        config = self.config
        pool = self._free[small]
        # get_free_block: the best fit, taken from the index the search found (no second bisect)
        i = bisect_left(pool, size << _ADDR_BITS)
        if i < len(pool) and (config.max_split_size == NO_LIMIT or config.expandable_segments
                              or self._fits_split_rule(size, pool[i] >> _ADDR_BITS)):
            block = self._by_addr[pool[i] & _ADDR_MASK]
            del pool[i]
        else:
            found = self._alloc_block(size, small)
            if found is None and config.max_split_size != NO_LIMIT:
                if self._release_available_cached_blocks(size, small):
                    found = self._alloc_block(size, small)
            if found is None:
                self.releases += 1
                self._release_cached_blocks()
                found = self._alloc_block(size, small)
            if found is None:
                return False
            block = found
            self._unlist(block)
        # alloc_found_block: split the block if `should_split`, hand out its first `size` bytes
        rest = block.size - size
        if small or config.expandable_segments:
            split = rest >= kMinBlockSize
        else:
            split = size < config.max_split_size and rest > kSmallSize
        if split:
            after = block.next
            tail = _Block(block.addr + size, rest, small, block.segment)
            tail.prev, tail.next = block, after
            if after is not None:
                after.prev = tail
            block.next = tail
            block.size = size
            if config.expandable_segments and self._tail.get(small) is block:  # (only they have tails)
                self._tail[small] = tail
            self._by_addr[tail.addr] = tail
            insort(pool, rest << _ADDR_BITS | tail.addr)
        block.allocated = True
        self._live[key] = block
        allocated = self.allocated = self.allocated + block.size
        if allocated > self.max_allocated:
            self.max_allocated = allocated
        return True

    def free(self, key: int) -> None:
        block = self._live.pop(key, None)
        if block is None:
            return
        block.allocated = False
        size = block.size
        self.allocated -= size
        by_addr = self._by_addr
        pool = self._free[block.small]  # a segment's blocks are all of its pool
        # try_merge_blocks, with the block before it and the block after it
        other = block.prev
        if other is not None and not other.allocated:
            del pool[bisect_left(pool, other.size << _ADDR_BITS | other.addr)]
            del by_addr[block.addr]
            before = other.prev
            block.addr, block.prev = other.addr, before
            if before is not None:
                before.next = block
            size += other.size
        other = block.next
        if other is not None and not other.allocated:
            del pool[bisect_left(pool, other.size << _ADDR_BITS | other.addr)]
            del by_addr[other.addr]
            after = other.next
            block.next = after
            if after is not None:
                after.prev = block
            if self._tail and self._tail.get(block.small) is other:
                self._tail[block.small] = block
            size += other.size
        block.size = size
        by_addr[block.addr] = block
        insort(pool, size << _ADDR_BITS | block.addr)

    def dispose(self) -> None:
        """Unlink the blocks (each segment's are a doubly linked list: cycles), so that a finished
        replay's thousands of blocks are freed at once rather than left to the garbage collector,
        whose collections they would make longer and more frequent (an editor's every edit
        replays several runs). The state is unusable afterwards."""
        for b in self._by_addr.values():
            b.prev = b.next = None
        self._by_addr.clear()
        self._live.clear()
        self._tail.clear()

    def copy(self, limit: int) -> Allocator:
        """This state under another limit (its blocks copied, their links kept): a run at `limit`
        can go on from here as it would have from the start, when nothing before reached it."""
        new = Allocator(limit, self.config, self.reserved, self.allocated, self.max_reserved, self.max_allocated,
                        self.releases)
        twin: dict[int, _Block] = {}
        for b in self._by_addr.values():
            c = _Block(b.addr, b.size, b.small, b.segment)
            c.allocated = b.allocated
            twin[id(b)] = c
        for b in self._by_addr.values():
            c = twin[id(b)]
            c.prev = twin[id(b.prev)] if b.prev is not None else None
            c.next = twin[id(b.next)] if b.next is not None else None
        new._free = {small: list(pool) for small, pool in self._free.items()}
        new._by_addr = {addr: twin[id(b)] for addr, b in self._by_addr.items()}
        new._live = {key: twin[id(b)] for key, b in self._live.items()}
        new._next_addr, new._segments = self._next_addr, self._segments
        new._vend = dict(self._vend)
        new._tail = {small: twin[id(b)] if b is not None else None for small, b in self._tail.items()}
        return new

    # ------------------------------------------------------------------ the allocator's steps
    def _list(self, b: _Block) -> None:
        insort(self._free[b.small], b.size << _ADDR_BITS | b.addr)

    def _unlist(self, b: _Block) -> None:
        pool = self._free[b.small]
        i = bisect_left(pool, b.size << _ADDR_BITS | b.addr)
        del pool[i]

    def _fits_split_rule(self, size: int, found: int) -> bool:
        """get_free_block's max_split_size rules for the best-fitting free block of `found` bytes."""
        limit = self.config.max_split_size
        if size < limit <= found:
            return False  # do not return an oversized block for a large request
        if size >= limit and found >= size + kLargeBuffer:
            return False  # an oversized block may be rounded up, within kLargeBuffer
        return True

    def _alloc_block(self, size: int, small: bool) -> _Block | None:
        if self.config.expandable_segments:
            return self._expand(size, small)
        seg = allocation_size(size)
        if self.reserved + seg > self.limit:
            return None
        self._reserve(seg)
        b = _Block(self._next_addr, seg, small, self._segments)
        self._segments += 1
        self._next_addr += seg + (1 << 30)  # segments are never contiguous with each other
        self._by_addr[b.addr] = b
        self._list(b)
        return b

    def _reserve(self, n: int) -> None:
        self.reserved += n
        if self.reserved > self.max_reserved:
            self.max_reserved = self.reserved

    def _release_cached_blocks(self) -> None:
        """release_cached_blocks: every cached segment that is wholly free goes back to the
        driver; with expandable segments, the pages wholly inside free blocks are unmapped."""
        if self.config.expandable_segments:
            self._unmap_free_pages()
            return
        for small in (True, False):
            for entry in list(self._free[small]):
                b = self._by_addr[entry & _ADDR_MASK]
                if b.prev is None and b.next is None:
                    self._release_block(b)

    def _release_block(self, b: _Block) -> None:
        self._unlist(b)
        del self._by_addr[b.addr]
        self.reserved -= b.size

    def _release_available_cached_blocks(self, size: int, small: bool) -> bool:
        """release_available_cached_blocks (only with max_split_size_mb): free the smallest cached
        oversize segment that is large enough, else the largest ones until enough is freed."""
        limit = self.config.max_split_size
        want = max(size, limit)
        pool = self._free[small]
        # (Never a block of an expandable segment: torch skips them here, and its release_block
        # asserts it is not given one. With expandable segments on, every block is one.)
        whole = [(s, a) for s, a in ((e >> _ADDR_BITS, e & _ADDR_MASK) for e in pool) if s >= limit
                 and self._by_addr[a].prev is None
                 and self._by_addr[a].next is None and self._by_addr[a].segment >= 0]
        fit = [w for w in whole if w[0] >= want]
        if fit:
            self._release_block(self._by_addr[fit[0][1]])
            return True
        released = 0
        for s, a in reversed(whole):
            if released >= want:
                break
            self._release_block(self._by_addr[a])
            released += s
        return released >= want

    # ------------------------------------------------------------------ expandable segments
    def _page(self, small: bool) -> int:
        return kSmallBuffer if small else kLargeBuffer

    def _expand(self, size: int, small: bool) -> _Block | None:
        """Map pages at the segment's end: the free block that ends there grows, else a new
        block starts there (try_allocate_expandable_block)."""
        page = self._page(small)
        tail = self._tail.get(small)
        have = tail.size if tail is not None and not tail.allocated else 0
        need = -(-(size - have) // page) * page
        if self.reserved + need > self.limit:
            return None
        self._reserve(need)
        if tail is not None and have:
            self._unlist(tail)
            tail.size += need
            self._list(tail)
            b = tail
        else:
            b = _Block(self._vend[small], need, small, -1)
            b.prev = tail
            if tail is not None:
                tail.next = b
            self._by_addr[b.addr] = b
            self._list(b)
        self._vend[small] += need
        self._tail[small] = b
        return b

    def _unmap_free_pages(self) -> None:
        """At the limit the pages wholly inside free blocks are unmapped (unmap_block). What stays
        of such a block (its partial pages) is cut off from its neighbours; new memory is mapped
        at the segment's end afterwards."""
        for small in (True, False):
            page = self._page(small)
            for entry in list(self._free[small]):
                b = self._by_addr[entry & _ADDR_MASK]
                if b.segment >= 0:
                    continue
                lo = -(-b.addr // page) * page
                hi = (b.addr + b.size) // page * page
                if hi <= lo:
                    continue
                self.reserved -= hi - lo
                self._unlist(b)
                del self._by_addr[b.addr]
                for other in (b.prev, b.next):
                    if other is not None:
                        if other.prev is b:
                            other.prev = None
                        if other.next is b:
                            other.next = None
                tail = None
                for a, n in ((b.addr, lo - b.addr), (hi, b.addr + b.size - hi)):
                    if n > 0:
                        piece = _Block(a, n, small, -1)
                        self._by_addr[a] = piece
                        self._list(piece)
                        tail = piece
                if self._tail.get(small) is b:
                    self._tail[small] = tail if tail is not None and tail.addr + tail.size == self._vend[small] \
                        else None


def simulate(events: Iterable[Event], limit: int = NO_LIMIT, config: AllocatorConfig | None = None,
             start: Allocator | None = None) -> Result:
    """Run `events` (see `Event`); stops at the first request that fails. `start`: the state to
    go on from (the caller's, left as the run leaves it); else a new one, disposed of after."""
    alloc = start if start is not None else Allocator(limit, config or AllocatorConfig())
    try:
        return _replay(alloc, events)
    finally:
        if start is None:
            alloc.dispose()


def _replay(alloc: Allocator, events: Iterable[Event]) -> Result:
    malloc, free = alloc.malloc, alloc.free
    for i, (key, size) in enumerate(events):
        if size == FREE:
            free(key)
        elif not malloc(key, size):
            return Result(alloc.max_reserved, alloc.max_allocated, alloc.reserved, i, round_size(size),
                          alloc.releases)
    return Result(alloc.max_reserved, alloc.max_allocated, alloc.reserved, releases=alloc.releases)


def allocs(sizes: Sequence[int], first_key: int) -> list[Event]:
    """Events allocating `sizes` under consecutive keys from `first_key`."""
    return [(first_key + i, s) for i, s in enumerate(sizes)]


def frees(keys: Iterable[int]) -> list[Event]:
    return [(k, FREE) for k in keys]
