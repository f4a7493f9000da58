"""Structures: checks before anything is spent on them, and the provenance-tracked sampling steps."""
