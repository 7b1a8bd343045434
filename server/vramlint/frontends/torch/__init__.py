"""The torch.nn frontend: the `torch` stubs, tensors, nn.Module semantics and the layer catalog."""
