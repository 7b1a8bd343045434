"""Renderers of analysis results (JSON, text); no computation happens here."""
