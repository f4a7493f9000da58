"""The active-learning loop (``ionfield.active_learning``): label -> learn -> explore -> select."""
