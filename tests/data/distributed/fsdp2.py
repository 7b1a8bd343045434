"""FSDP2: one fully_shard per block and one on the root, over a 1-D mesh of the world.

torchrun --standalone --nproc_per_node=4 fsdp2.py
"""
import os

from model import Net, setup, train
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard


def main():
    device = setup()
    mesh = init_device_mesh(device, (int(os.environ["WORLD_SIZE"]),))
    model = Net().to(device)
    for block in model.blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    train(model, device)


if __name__ == "__main__":
    main()
