"""The language server (pygls 2): thin handlers, one module per LSP feature, over the analysis API."""
