"""DDP with its defaults (25 MiB gradient buckets, the first one 1 MiB).

torchrun --standalone --nproc_per_node=4 ddp.py
"""
from model import Net, setup, train
from torch.nn.parallel import DistributedDataParallel as DDP


def main():
    device = setup()
    model = Net().to(device)
    model = DDP(model)
    train(model, device)


if __name__ == "__main__":
    main()
