"""AiiDA data types of the project (entry points in the ``aiida.data`` group, prefixed ``ionfield.``)."""
