"""bitsandbytes, modelled: quantized linear layers and 8-bit optimizers (QLoRA)."""
