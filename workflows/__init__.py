"""AiiDA WorkChains and calcfunctions of aiida-ionfield (installed as ``ionfield.workflows``)."""
