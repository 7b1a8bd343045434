"""Rules for transformers' own machinery that the engine does not evaluate (decorators)."""
