"""Tensor parallelism: each block's fc1 split by columns, fc2 by rows (the Megatron MLP).

torchrun --standalone --nproc_per_node=4 tp.py
"""
import os

from model import Net, setup, train
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module


def main():
    device = setup()
    mesh = init_device_mesh(device, (int(os.environ["WORLD_SIZE"]),))
    # DTensor.from_local assumes even shards: the split hidden size is a multiple of the world.
    model = Net(hidden=1204).to(device)
    plan = {}
    for i in range(len(model.blocks)):
        plan[f"blocks.{i}.fc1"] = ColwiseParallel()
        plan[f"blocks.{i}.fc2"] = RowwiseParallel()
    model = parallelize_module(model, mesh, plan)
    train(model, device)


if __name__ == "__main__":
    main()
