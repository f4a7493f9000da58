"""Parsers for our CalcJobs."""
