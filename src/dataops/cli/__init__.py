"""The `dataops` command line: parse arguments, call a service, render the result."""
