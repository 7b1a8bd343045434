"""Tensor parallelism of a transformer: attention's q, k, v split by columns (heads), o by rows;
the MLP's fc1 by columns, fc2 by rows (Megatron-LM's layout).

torchrun --standalone --nproc_per_node=4 tp_attention.py
"""
import os

from model import Transformer, setup, train
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module


def main():
    device = setup()
    mesh = init_device_mesh(device, (int(os.environ["WORLD_SIZE"]),))
    model = Transformer().to(device)
    plan = {}
    for i in range(len(model.blocks)):
        for name in ("q", "k", "v"):
            plan[f"blocks.{i}.attn.{name}"] = ColwiseParallel()
        plan[f"blocks.{i}.attn.o"] = RowwiseParallel()
        plan[f"blocks.{i}.mlp.fc1"] = ColwiseParallel()
        plan[f"blocks.{i}.mlp.fc2"] = RowwiseParallel()
    model = parallelize_module(model, mesh, plan)
    train(model, device, shape=(16, 32))


if __name__ == "__main__":
    main()
