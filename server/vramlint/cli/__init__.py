"""The `vramlint` command line."""
