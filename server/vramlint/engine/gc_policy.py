"""Fewer full garbage collections while an analysis runs.

An analysis allocates millions of long-lived objects (libcst trees, evaluated library modules,
the models it builds), and CPython's full collections walk all of them: on torchvision's 23
model files, eight full collections took 1.4 s of a 6.5 s analysis while finding next to no
garbage (the trees hold no cycles). A larger first threshold makes the youngest generation
collect every 50,000 net allocations instead of 700, so full collections come about 70 times
less often; cycles are still collected.

The thresholds are the process's, so nested or concurrent analyses (the language server's
worker and a CLI call in one process) share one setting: the first to enter sets it, the last
to leave restores what was there before.

The youngest collections still scan each new object, and the middle one scans again what
survived: a parse tree (~10 nodes a line, alive for the whole analysis) twice. `parsed()` moves
what the process holds out of the collector's lists after each parse (`gc.freeze`), so neither
scans a tree again: on torchvision's 23 model files, collections went from 0.12-0.16 s to
0.06-0.07 s of a 2.3-2.9 s run. What is frozen is never collected while frozen, so this is
temporary: the last analysis to leave gives it all back to the oldest generation
(`gc.unfreeze`), where garbage it held is collected by the next full collection (one every
FULL_COLLECTION_EVERY such rounds at least). Little garbage is frozen so: the evaluator makes
almost no reference cycles (a comprehension's recursive closure was one, and it held every
module the comprehension built: 51,000 cyclic objects over 12 model files, 3,800 since). It is done only
when nothing else had frozen objects when the first analysis entered (the language server
freezes its long-lived heap for good), and it stops for the round when something freezes for
good meanwhile (`before_lasting_freeze`: a library load, which first collects, must see every
object, and what it freezes must stay frozen); from then on no round freezes in the process.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

ANALYSIS_THRESHOLDS = (50_000, 10, 10)
# Objects given back by `gc.unfreeze` reach the oldest generation without counting towards its
# next collection (CPython counts what the middle one promotes), so garbage frozen with a parse
# could wait there for good: every this many rounds that froze end with a full collection (0.13 s
# over the process after torchvision's 23 model files, which leaves 65 objects to collect).
FULL_COLLECTION_EVERY = 32

_lock = threading.Lock()
_active = 0
_saved: tuple[int, int, int] | None = None
_freeze_parses = False  # this round of analyses freezes after parses (see above)
_frozen = False  # and it has
_rounds_frozen = 0
# Something froze objects for good in this process (a library load, the language server, or code
# around vramlint): rounds freeze nothing from then on, and the frozen count is not asked again.
_lasting_freezes = False


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the block under ANALYSIS_THRESHOLDS, unless the caller chose larger ones itself."""
    global _active, _saved, _freeze_parses, _frozen, _rounds_frozen
    with _lock:
        if _active == 0:
            _frozen = False
            _freeze_parses = not _lasting_freezes and gc.isenabled() and not _others_froze()
            current = gc.get_threshold()
            # (A first threshold of 0 means the caller turned automatic collection off.)
            _saved = current if 0 < current[0] < ANALYSIS_THRESHOLDS[0] else None
            if _saved is not None:
                gc.set_threshold(*ANALYSIS_THRESHOLDS)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                if _frozen:
                    gc.unfreeze()
                    _rounds_frozen += 1
                    if _rounds_frozen % FULL_COLLECTION_EVERY == 0:
                        gc.collect()
                _freeze_parses = _frozen = False
                if _saved is not None:
                    gc.set_threshold(*_saved)
                    _saved = None


def parsed() -> None:
    """A parse tree was made: out of the young collections' scans while the analyses run."""
    global _frozen
    with _lock:
        if _freeze_parses:
            gc.freeze()
            _frozen = True


def before_lasting_freeze() -> None:
    """Someone is about to collect and freeze what the process holds for good: what the round
    froze goes back to the collector first, and no round freezes any more."""
    global _freeze_parses, _frozen, _lasting_freezes
    with _lock:
        if _frozen:
            gc.unfreeze()
        _freeze_parses = _frozen = False
        _lasting_freezes = True


def _others_froze() -> bool:
    """Whether objects are frozen, by someone else (a round gives its own back when it ends).
    `gc.get_freeze_count` walks the frozen list (30 ms for 3 million objects): asked only until
    it finds some, then never again."""
    global _lasting_freezes
    if gc.get_freeze_count() == 0:
        return False
    _lasting_freezes = True
    return True
