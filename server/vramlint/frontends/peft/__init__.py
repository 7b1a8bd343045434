"""peft: what reads an adapter's files (see pretrained.py)."""
