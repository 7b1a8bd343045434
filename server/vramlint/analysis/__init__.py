"""The analysis core shared by the CLI and the language server."""
