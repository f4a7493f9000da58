"""What AiiDA loads by entry point and what a user types: data types, CalcJobs, parsers, the CLI.

Installed as ``ionfield.plugins``.
"""
