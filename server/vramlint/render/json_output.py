"""The versioned JSON document of `vramlint check --format json` (schema "vramlint/1")."""

from __future__ import annotations

from typing import Any

from vramlint.analysis.results import FileAnalysis, Finding, ModelResult, ModuleNode, UnknownInfo
from vramlint.memory.estimate import MemoryEstimate
from vramlint.render.distributed import distributed_json, strategy
from vramlint.render.setup import one_gpu_default
from vramlint.settings import Setup

SCHEMA = "vramlint/1"


def unknown_json(u: UnknownInfo) -> dict[str, Any]:
    loc = u.location
    return {
        "reason": u.reason,
        "path": loc.path if loc else None,
        "line": loc.line if loc else None,
        "column": loc.column + 1 if loc else None,
    }


def layer_rows(node: ModuleNode) -> list[dict[str, Any]]:
    """The module tree flattened in definition order (torchinfo's rows)."""
    rows = [{
        "path": node.path,
        "type": node.class_name,
        "line": node.location.line if node.location else None,
        "params": node.param_count,
        "output_shape": list(node.output_shape) if node.output_shape is not None else None,
        "saved_bytes": node.saved_bytes,
        "own_params": [{"name": p.name, "shape": list(p.shape) if p.shape is not None else None,
                        "numel": p.numel, "trainable": p.trainable} for p in node.params],
    }]
    for child in node.children:
        rows.extend(layer_rows(child))
    return rows


MEMORY_FIELDS = ("weights", "buffers", "gradients", "optimizer_state", "activations", "inputs", "workspace",
                 "optimizer_temp", "train_peak", "inference_peak", "device_total", "host_peak", "host_peak_cpu_training",
                 "kv_cache", "generation_peak", "max_reserved")


def memory_json(e: MemoryEstimate) -> dict[str, Any]:
    out: dict[str, Any] = {"batch_size": e.batch_size, "precision": e.precision, "optimizer": e.optimizer,
                           "device": e.device}
    out["bytes"] = {f: getattr(e, f) for f in MEMORY_FIELDS}
    d = e.distributed
    if d is not None:  # several GPUs: every figure is one GPU's (absent on one GPU: issue 14 added them)
        out.update(world_size=d.plan.world_size, strategy=strategy(d.plan))
        out["bytes"].update(communication=d.communication, host=d.host)
    out["train_peak_phase"] = e.train_peak_phase
    out["range"] = list(e.train_range) if e.train_range is not None else None
    out["inference_range"] = list(e.inference_range) if e.inference_range is not None else None
    out["fits"] = e.fits
    out["device_memory"] = e.device_memory
    out["max_batch"] = e.max_batch
    out["unmodelled_ops"] = e.unmodelled_ops
    out["notes"] = e.notes
    g = e.generation
    out["generation"] = None if g is None else {
        "call": g.where, "cache": g.cache, "sequences": g.sequences, "context": g.context,
        "cached_tokens": g.cached_tokens, "concat_transient": g.concat_transient, "logits": g.logits,
        "fits": e.inference_need <= e.device_memory, "notes": list(g.notes)}
    if d is not None:
        out["distributed"] = distributed_json(d)
    return out


def setup_json(setup: Setup) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, sourced in setup.values.items():
        if one_gpu_default(setup, key):  # added by issue 14: absent where they say nothing
            continue
        v = sourced.value
        if key == "inputs":
            v = [{"shape": list(i.shape), "dtype": i.dtype} for i in v]
        out[key] = {"value": v, "source": sourced.source}
    return out


def finding_json(f: Finding) -> dict[str, Any]:
    loc = f.location
    return {"code": f.code, "name": f.name, "severity": f.severity, "message": f.message, "model": f.model,
            "path": loc.path if loc else None, "line": loc.line if loc else None,
            "column": loc.column + 1 if loc else None}


def model_json(m: ModelResult, layers: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": m.name,
        "kind": m.kind,
        "line": m.location.line if m.location else None,
        "column": m.location.column + 1 if m.location else None,
        "params": {"total": m.params.total, "trainable": m.params.trainable, "known": m.params.known},
        "buffers": {"elements": m.params.buffers},
        "construction": m.construction,
        "unknowns": [unknown_json(u) for u in m.unknowns],
        "error": unknown_json(m.error) if m.error else None,
        "used_in": m.used_in,
        "output_shape": list(m.output_shape) if m.output_shape is not None else None,
        "forward_unknowns": [unknown_json(u) for u in m.forward_unknowns],
        "memory": memory_json(m.memory) if m.memory is not None else None,
        "memory_unknowns": [unknown_json(u) for u in m.memory_unknowns],
        "inputs_from": m.inputs_from,
        "setup": setup_json(m.setup) if m.setup is not None else None,
    }
    if layers and m.tree is not None:
        out["layers"] = layer_rows(m.tree)
    return out


def file_json(f: FileAnalysis, layers: bool = False) -> dict[str, Any]:
    return {
        "path": f.path,
        "models": [model_json(m, layers) for m in f.models],
        "findings": [finding_json(x) for x in f.findings],
        "errors": [{"code": "VL000", **unknown_json(e)} for e in f.errors],  # what SARIF reports as VL000
        "warnings": [unknown_json(w) for w in f.warnings],
        # Without models: module-level names left unknown, blocks not fully evaluated.
        "unevaluated": [unknown_json(u) for u in f.unevaluated],
    }


def document(files: list[FileAnalysis], layers: bool = False) -> dict[str, Any]:
    from vramlint import __version__

    return {"schema": SCHEMA, "version": __version__, "files": [file_json(f, layers) for f in files]}
