"""Quick fix for a PyTorch model that does not fit one GPU (Frontend.memory_fixes): shard it with
FSDP2 across the GPUs of a node, as PyTorch's FSDP2 tutorial does — `fully_shard` on each repeated
block, then on the model — so that each GPU holds 1/N of the parameters, gradients and optimizer
state and gathers one block's parameters at a time. The editor analyses the file with the change
to title the fix with the per-GPU estimate.
"""

from __future__ import annotations

import re

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from vramlint.frontends.interface import FixRequest, ProposedFix, SourceEdit
from vramlint.frontends.source_edits import import_edits, imported_names, indent_of

NODE_GPUS = 8  # the GPUs of one node, when the setup says one GPU


def memory_fixes(req: FixRequest) -> list[ProposedFix]:
    name = req.model.rsplit(".", 1)[-1]
    if req.distributed or req.blocks is None or "torch" not in req.text \
            or not re.search(rf"^[ \t]*{re.escape(name)}\s*=", req.text, re.M):
        return []
    try:
        wrapper = MetadataWrapper(cst.parse_module(req.text))
    except (cst.ParserSyntaxError, RecursionError):
        return []
    positions = wrapper.resolve(PositionProvider)
    lines = req.text.splitlines()
    if not 0 < req.line <= req.end_line <= len(lines):
        return []
    indent = indent_of(lines[req.line - 1])
    after = (req.end_line, len(lines[req.end_line - 1]))
    world = req.world_size if req.world_size > 1 else NODE_GPUS
    code = (f"\n{indent}for block in {name}.{req.blocks}:\n{indent}    fully_shard(block)"
            f"\n{indent}fully_shard({name})")
    edits = [*import_edits(wrapper.module, positions, imported_names(wrapper.module),
                           {"torch.distributed.fsdp": ("fully_shard",)}),
             SourceEdit(*after, *after, code)]
    if req.world_size <= 1:  # the estimate is per GPU of `world`: say it where the model is
        edits.append(_world_directive(lines, req.line, world))
    return [ProposedFix(f"Shard with FSDP2 across {world} GPUs (fully_shard on each block of {req.blocks})",
                        tuple(edits))]


def _world_directive(lines: list[str], line: int, world: int) -> SourceEdit:
    """`world-size=N` in the model's directive (the comment line above it), or a new directive."""
    above = lines[line - 2] if line >= 2 else ""
    if above.lstrip().startswith("# vramlint:"):
        end = len(above.rstrip())
        return SourceEdit(line - 1, end, line - 1, len(above), f" world-size={world}")
    return SourceEdit(line, 0, line, 0, f"{indent_of(lines[line - 1])}# vramlint: world-size={world}\n")
