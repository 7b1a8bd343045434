"""Train the GPT of gpt.py at 5.2 billion parameters (64 layers of width 2560) with FSDP2 on 8
GPUs, in bf16 mixed precision. Too large for one 80 GB card with AdamW; sharded, each GPU holds
1/8 of the weights, gradients and optimizer state, and one block's gathered weights at a time.

    torchrun --nproc_per_node 8 examples/fsdp_gpt.py
    vramlint check examples/fsdp_gpt.py      # per GPU: the device mesh says 8 ranks
"""

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from gpt import GPT, GPTConfig


def main():
    dist.init_process_group("nccl")
    mesh = init_device_mesh("cuda", (8,))
    model = GPT(GPTConfig(n_layer=64, n_head=32, n_embd=2560))
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for block in model.transformer.h:
        fully_shard(block, mesh=mesh, mp_policy=mp)
    fully_shard(model, mesh=mesh, mp_policy=mp)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    for step in range(100):
        idx = torch.randint(0, 50304, (4, 1024), device="cuda")
        logits, loss = model(idx, targets=idx)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


if __name__ == "__main__":
    main()
