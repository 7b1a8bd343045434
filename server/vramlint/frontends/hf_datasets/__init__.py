"""Hugging Face `datasets`, as vramlint's own stub module (frontend.py)."""
