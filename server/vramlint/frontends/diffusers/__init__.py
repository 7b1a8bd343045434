"""diffusers: what its model code needs beyond torch.nn (see decorators.py)."""
