"""Several GPUs in the editor (issue 14): a model too large for one GPU gets the quick fix
"shard with FSDP2 across N GPUs", titled with the per-GPU estimate of the file so changed, and
the changed file's estimate is per GPU. A real LSP client (tests/test_lsp.py's fixtures)."""

from __future__ import annotations

import re

import pytest

from tests import test_lsp
from tests.test_lsp import Session, apply_edit, by_code, line_of

client = test_lsp.client
lsp = test_lsp.lsp

# About 4.3 billion fp32 parameters with AdamW: 69 GB of model states, more than an H100 holds.
TOO_BIG = """\
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.up = nn.Linear(d, 4 * d)
        self.down = nn.Linear(4 * d, d)

    def forward(self, x):
        return x + self.down(torch.relu(self.up(self.norm(x))))


class Net(nn.Module):
    def __init__(self, d=8192, n=8):
        super().__init__()
        self.blocks = nn.ModuleList([Block(d) for _ in range(n)])
        self.head = nn.Linear(d, 16)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)


model = Net()
optimizer = torch.optim.AdamW(model.parameters())
loss = model(torch.randn(4, 128, 8192)).sum()
"""


@pytest.mark.asyncio
async def test_shard_with_fsdp2_quick_fix(lsp: Session) -> None:
    uri = await lsp.open("too_big.py", TOO_BIG)
    (vl001,) = by_code(lsp.client.diagnostics[uri], "VL001")
    actions = {a.title.split(" (")[0]: a for a in await lsp.actions(uri, [vl001])}
    fix = actions["Shard with FSDP2 across 8 GPUs"]
    m = re.fullmatch(r"Shard with FSDP2 across 8 GPUs \(fully_shard on each block of blocks\): (.+) of (.+), fits",
                     fix.title)
    assert m is not None, fix.title
    assert fix.edit is not None and fix.edit.changes is not None
    edits = fix.edit.changes[uri]
    assert sorted(e.new_text for e in edits) == sorted([
        "\nfrom torch.distributed.fsdp import fully_shard",
        "\nfor block in model.blocks:\n    fully_shard(block)\nfully_shard(model)",
        "# vramlint: world-size=8\n"])
    changed = TOO_BIG
    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        changed = apply_edit(changed, e)
    assert changed.splitlines()[line_of(changed, "model = Net()") - 1] == "# vramlint: world-size=8"
    start = len(lsp.statuses)
    diags = await lsp.edit(uri, changed)
    assert by_code(diags, "VL001") == []
    status = await lsp.status(uri, 2, after=start)
    (model,) = [x for x in status["models"] if x["name"] == "model"]
    assert model["fits"] is True
    # The hover and the code lens of the changed file are per GPU, with the world size's source.
    line = line_of(changed, "model = Net()")
    md = await lsp.hover(uri, line, 1)
    assert md is not None and "per GPU, 8 ranks (fsdp2 full-shard)" in md, md
    assert "directive" in md, md
    lens = (await lsp.lenses(uri))[line]
    assert "per GPU, 8 ranks" in lens, lens
