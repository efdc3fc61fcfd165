"""Exception types. A :class:`CaloforgeError` is a *user* error: the CLI prints its message on
one line and exits non-zero without a traceback. Anything else is a bug and keeps its traceback."""


class CaloforgeError(Exception):
    """A problem with the user's input, configuration or environment (message is user-facing)."""


class InputFileError(CaloforgeError):
    """An input file is missing, unreadable or does not follow the expected format."""


class ConfigError(CaloforgeError):
    """A configuration value or file is invalid."""


class OutputExistsError(CaloforgeError):
    """The output already exists and ``overwrite`` was not requested."""
