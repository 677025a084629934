"""The embedded stack for a laptop: dev server, stack runner (``python -m starter.dev``), demo."""
