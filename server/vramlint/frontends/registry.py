"""The frontends' contributions, composed in one place (the analysis core names no framework)."""

from __future__ import annotations

from vramlint.frontends.keras.training_setup import HANDLER as KERAS_SETUP
from vramlint.frontends.torch.training_setup import HANDLER as TORCH_SETUP
from vramlint.frontends.transformers.training_setup import HANDLER as TRANSFORMERS_SETUP

# Order matters only where two handlers map the same optimizer class name: the first wins.
TRAINING_SETUP_HANDLERS = (TORCH_SETUP, TRANSFORMERS_SETUP, KERAS_SETUP)
