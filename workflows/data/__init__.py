"""Data: labelled frames that enter the project from outside, as provenance-tracked steps."""
