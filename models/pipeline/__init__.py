"""The one pipeline from a structure to a trusted transport number: settings, coverage checks, the report."""
