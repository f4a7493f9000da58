"""Transport campaigns: production field MD over a grid, analysed with provenance."""
