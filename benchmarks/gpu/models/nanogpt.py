# examples/gpt.py (nanoGPT) with its default config, for the hold-out measurements.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "examples"))
from gpt import GPT, GPTConfig  # noqa: E402

model = GPT(GPTConfig())
