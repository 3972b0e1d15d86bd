"""`dataops init`: new project repositories (see project.py)."""
