"""The two ways a command ends early, each one line on stderr (the CLI prints them)."""


class UsageError(Exception):
    """A request the service cannot carry out (bad input, an unknown study); exit status 2."""


class RunFailure(Exception):
    """The machine or the trials let the run down (a full disk, a failure every trial hits): the
    study is left consistent and the same command continues once the cause is fixed; exit status 1."""
