"""`vramlint/status`: a notification after each analysis, for the client's status item: each
model of the document with its line (0-based, as LSP positions), its training peak, what it needs
of the GPU and whether it fits. With `mode = "infer"` (`mode`), `fits` is about inference
(`inferenceNeed`: the inference peak with the CUDA context), as the CLI's verdict and the code lens.
On several GPUs, `perGpu` ("per GPU, 8 ranks (fsdp2 full-shard)") says what the figures are."""

from __future__ import annotations

from typing import Any

from vramlint.analysis.results import FileAnalysis
from vramlint.render.distributed import per_gpu

METHOD = "vramlint/status"


def status(uri: str, version: int, fa: FileAnalysis) -> dict[str, Any]:
    models = []
    for m in fa.models:
        e = m.memory
        mode = m.setup["mode"] if m.setup is not None else None
        need = (e.inference_need if mode == "infer" else e.device_total) if e else None
        models.append({
            "name": m.name, "line": m.location.line - 1 if m.location else None, "params": m.params.total,
            "trainPeak": e.train_peak if e else None, "inferencePeak": e.inference_peak if e else None,
            "deviceTotal": e.device_total if e else None, "deviceMemory": e.device_memory if e else None,
            "device": e.device if e else None, "batchSize": e.batch_size if e else None,
            "mode": mode, "inferenceNeed": e.inference_need if e else None,
            "fits": need <= e.device_memory if e and need is not None else None,
        })
        if e is not None and e.distributed is not None:  # several GPUs: the figures are each GPU's
            models[-1]["perGpu"] = per_gpu(e)
    return {"uri": uri, "version": version, "models": models,
            "errors": len(fa.errors) + sum(1 for f in fa.findings if f.severity == "error")}
