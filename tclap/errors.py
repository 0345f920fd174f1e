"""One exception type for bad input, so the CLI can print it without a traceback."""


class DataError(ValueError):
    """Bad input data. The message always names the file, row or field at fault."""
