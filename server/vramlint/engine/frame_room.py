"""Room for the evaluator's deep recursion on CPython's frame stack.

CPython (3.11+) keeps Python frames in 16 KiB chunks it maps and unmaps as the call depth
crosses a chunk's end, and it frees a chunk as soon as the call that opened it returns. The
evaluator is a tree-walking interpreter whose depth swings by hundreds of frames many times a
second, so it kept crossing one of those ends: on torchvision's 23 model files, 95,000
mmap/munmap pairs of 16 KiB, 0.6 s of system time (strace -c; `time`'s "sys" went 0.70 s ->
0.12 s with this).

CPython sizes a new chunk to fit the frame that needs it, doubled: a function whose code
declares a stack of half a million slots (never used: a frame's stack slots are not touched
until pushed) gets an 8 MiB chunk, and the analysis it calls runs in the 4 MiB after its frame,
where nothing is mapped or unmapped until the depth passes about 25,000 frames.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_DECLARED_STACK = (4 << 20) // 8 + 64  # slots: just over 4 MiB, so CPython maps 8 MiB


def _call(fn: Callable[[], T]) -> T:
    return fn()


def _roomy_call() -> Callable[[Callable[[], T]], T]:
    """`_call` with a code object declaring _DECLARED_STACK stack slots (3.10 has no frame
    chunks: there, and wherever the code object cannot be changed, `_call` itself)."""
    if sys.version_info < (3, 11):
        return _call

    def roomy(fn: Callable[[], T]) -> T:
        return fn()

    try:
        roomy.__code__ = roomy.__code__.replace(co_stacksize=_DECLARED_STACK)
    except (AttributeError, TypeError, ValueError):
        return _call
    return roomy


_roomy = _roomy_call()


def run_with_frame_room(fn: Callable[[], T]) -> T:
    """`fn()`, with its calls on one large frame chunk (see the module's docstring)."""
    return _roomy(fn)  # type: ignore[no-any-return]
