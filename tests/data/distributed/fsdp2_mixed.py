"""FSDP2 with mixed precision: bf16 parameters for compute, fp32 gradient reduction.

torchrun --standalone --nproc_per_node=4 fsdp2_mixed.py
"""
import os

import torch
from model import Net, setup, train
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard


def main():
    device = setup()
    mesh = init_device_mesh(device, (int(os.environ["WORLD_SIZE"]),))
    model = Net().to(device)
    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for block in model.blocks:
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    train(model, device)


if __name__ == "__main__":
    main()
