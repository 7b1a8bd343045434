"""The memory timeline in `vramlint report --format json` (`memory.timeline`, docs/json.md)."""

from __future__ import annotations

from typing import Any

from vramlint.memory.series import CATEGORIES, Series, Timeline


def timeline_json(tl: Timeline) -> dict[str, Any]:
    return {"categories": list(CATEGORIES), "budget": tl.budget, "device_memory": tl.device_memory,
            "context": tl.context, "training": series_json(tl.training), "inference": series_json(tl.inference)}


def series_json(s: Series) -> dict[str, Any]:
    p = s.samples[s.peak]
    return {
        "peak": {"index": s.peak, "bytes": p.total, "phase": p.phase, "op": p.op, "module": p.module},
        "max_reserved": s.max_reserved,
        "samples": [{"phase": x.phase, "op": x.op, "module": x.module, "total": x.total, "bytes": list(x.parts),
                     "reserved": x.reserved} for x in s.samples],
    }
