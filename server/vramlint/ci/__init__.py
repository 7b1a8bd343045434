"""Continuous integration: the GitHub Action's logic (github_action.py, action.yml at the repository root)."""
