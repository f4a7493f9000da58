"""Active learning as plain Python: trust levels, frame selection, threshold calibration, convergence.

No AiiDA here (DP-GEN2 style): ``ionfield.workflows.active_learning`` calls these classes, and the
tests drive them directly.
"""
