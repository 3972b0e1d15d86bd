"""What a project's own test suite imports from the toolkit: the checks every project passes."""
