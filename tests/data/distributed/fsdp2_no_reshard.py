"""FSDP2 without resharding after forward: the gathered parameters stay until backward.

torchrun --standalone --nproc_per_node=4 fsdp2_no_reshard.py
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
        fully_shard(block, mesh=mesh, reshard_after_forward=False)
    fully_shard(model, mesh=mesh, reshard_after_forward=False)
    train(model, device)


if __name__ == "__main__":
    main()
