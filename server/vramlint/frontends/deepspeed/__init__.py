"""DeepSpeed: the `deepspeed` package where it is absent, and the ZeRO plan a file states (frontend.py)."""
