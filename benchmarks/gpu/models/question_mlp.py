# The question's network (examples/mlp.py): input 1000, four hidden layers of 100, output 10.
import torch.nn as nn

model = nn.Sequential(
    nn.Linear(1000, 100), nn.ReLU(),
    nn.Linear(100, 100), nn.ReLU(),
    nn.Linear(100, 100), nn.ReLU(),
    nn.Linear(100, 100), nn.ReLU(),
    nn.Linear(100, 10),
)
