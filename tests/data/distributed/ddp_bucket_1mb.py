"""DDP with 1 MiB gradient buckets.

torchrun --standalone --nproc_per_node=4 ddp_bucket_1mb.py
"""
from model import Net, setup, train
from torch.nn.parallel import DistributedDataParallel as DDP


def main():
    device = setup()
    model = Net().to(device)
    model = DDP(model, bucket_cap_mb=1)
    train(model, device)


if __name__ == "__main__":
    main()
