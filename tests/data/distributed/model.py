"""The model, the process-group setup and the training loop that every case script imports (a
user's model.py beside the script; the scripts are what torchrun runs)."""
import os

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.norm = nn.LayerNorm(dim, bias=False)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return x + self.fc2(F.gelu(self.fc1(self.norm(x))))


class Net(nn.Module):
    # 301 and 1203 rows, blocks of 726,011 parameters: no multiple of 2 or 4, so that FSDP pads
    # each shard (FSDP2: every parameter's rows; FSDP1: each unit's flat parameter).
    def __init__(self, inputs=37, dim=301, hidden=1203, depth=4, classes=11):
        super().__init__()
        self.stem = nn.Linear(inputs, dim)
        self.blocks = nn.ModuleList([Block(dim, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, bias=False)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.head_dim = dim // heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)

    def forward(self, x):
        b, s, _ = x.shape
        # -1 heads: under tensor parallelism each rank computes its own heads.
        q = self.q(x).view(b, s, -1, self.head_dim).transpose(1, 2)
        k = self.k(x).view(b, s, -1, self.head_dim).transpose(1, 2)
        v = self.v(x).view(b, s, -1, self.head_dim).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o(y.transpose(1, 2).reshape(b, s, -1))


class TransformerBlock(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim, bias=False)
        self.attn = Attention(dim, heads)
        self.mlp = Block(dim, hidden)

    def forward(self, x):
        return self.mlp(x + self.attn(self.attn_norm(x)))


class Transformer(Net):
    """Net with attention in front of each MLP block (tensor parallelism's Megatron layout)."""

    def __init__(self, inputs=37, dim=300, heads=4, hidden=1204, depth=4, classes=11):
        super().__init__(inputs, dim, hidden, depth, classes)
        self.blocks = nn.ModuleList([TransformerBlock(dim, heads, hidden) for _ in range(depth)])


def setup():
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    torch.manual_seed(0)
    return device


def train(model, device, shape=(256,), steps=3):
    """AdamW on one fixed batch of `shape` samples (or sequences); tools/distributed_truth.py
    measures the 3rd iteration."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(*shape, 37, device=device)
    y = torch.randint(0, 11, shape, device=device)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x).flatten(0, -2), y.flatten())
        loss.backward()
        optimizer.step()
    dist.destroy_process_group()
