"""DDP with gradient_as_bucket_view=True: the gradients are views into the buckets.

torchrun --standalone --nproc_per_node=4 ddp_bucket_view.py
"""
from model import Net, setup, train
from torch.nn.parallel import DistributedDataParallel as DDP


def main():
    device = setup()
    model = Net().to(device)
    model = DDP(model, gradient_as_bucket_view=True)
    train(model, device)


if __name__ == "__main__":
    main()
