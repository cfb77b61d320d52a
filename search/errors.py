class UsageError(Exception):
    """A request the service cannot carry out; the CLI prints it as one line and exits 2."""
