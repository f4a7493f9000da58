"""Code that runs without AiiDA, on a compute node or in a notebook (installed as ``ionfield.models``)."""
