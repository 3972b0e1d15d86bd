"""The project a command runs in: dataops.yml loaded once, its state dir, its local secrets, and
one `Environment` per environment name, resolved once and passed down."""
