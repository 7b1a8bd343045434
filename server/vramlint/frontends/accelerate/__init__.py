"""HF Accelerate, modelled: the `Accelerator` a training script drives (prepare, backward, accumulate)."""
