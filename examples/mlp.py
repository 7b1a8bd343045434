"""The network of the classic question "how much memory does training this take?":
input 1000, four hidden Linear layers of 100, output 10 (131,410 parameters), written three ways.
"""

import torch
import torch.nn as nn

# 1. A Sequential literal.
model = nn.Sequential(
    nn.Linear(1000, 100), nn.ReLU(),
    nn.Linear(100, 100), nn.ReLU(),
    nn.Linear(100, 100), nn.ReLU(),
    nn.Linear(100, 100), nn.ReLU(),
    nn.Linear(100, 10),
)


# 2. A class that builds its layers in a loop.
class MLP(nn.Module):
    def __init__(self, n_in: int = 1000, hidden: int = 100, depth: int = 4, n_out: int = 10):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_out)

    def forward(self, x):
        return self.head(self.body(x))


# 3. A factory function with a list comprehension.
def make_mlp(sizes=(1000, 100, 100, 100, 100, 10)) -> nn.Sequential:
    return nn.Sequential(*[nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])])


# One batch through the model: the memory estimate takes the batch (256) and the input shape from
# this call (`vramlint explain examples/mlp.py --model model`).
x = torch.randn(256, 1000)
logits = model(x)
