"""FSDP1 SHARD_GRAD_OP (ZeRO-2): parameters gathered from forward to backward.

torchrun --standalone --nproc_per_node=4 fsdp1_shard_grad_op.py
"""
import functools

import torch
from model import Block, Net, setup, train
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp import ShardingStrategy
from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy


def main():
    device = setup()
    wrap_policy = functools.partial(transformer_auto_wrap_policy, transformer_layer_cls={Block})
    model = Net().to(device)
    model = FSDP(model, auto_wrap_policy=wrap_policy,
                 sharding_strategy=ShardingStrategy.SHARD_GRAD_OP, device_id=torch.device(device))
    train(model, device)


if __name__ == "__main__":
    main()
