"""Deterministic orchestration only: the session workflow and housekeeping workflows."""
