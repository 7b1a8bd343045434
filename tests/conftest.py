from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The persistent cache is off for the suite (and the processes it starts, which inherit this): no
# test writes a .vramlint_cache into the repository or reads a stale one. tests/test_cache.py
# turns it on, in temporary folders.
os.environ["VRAMLINT_NO_CACHE"] = "1"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `tests.support` for the library sources


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    from tests import test_torchvision

    summary = test_torchvision.SUMMARY
    if summary:
        matched = len(summary.get("matched", []))
        total = matched + len(summary.get("missed", []))
        terminalreporter.write_line(
            f"torchvision {test_torchvision.TORCHVISION_VERSION}: {matched}/{total} classification models "
            "match torch's parameter count"
        )
    from tests import test_corpora, test_timm, test_transformers_corpus

    for line in [*test_timm.SUMMARY, *test_transformers_corpus.SUMMARY, *test_corpora.SUMMARY]:
        terminalreporter.write_line(line)
    from tests import test_memory

    for name, line in test_memory.SUMMARY.items():
        terminalreporter.write_line(f"memory estimate vs GPU measurements ({name}): {line}")
    from tests import test_keras

    for line in test_keras.summary():
        terminalreporter.write_line(line)
