"""Example data for the shipped pipelines."""
