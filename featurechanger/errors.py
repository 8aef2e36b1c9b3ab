"""Errors a user can cause and fix. The CLI shows their message without a traceback. And
`first_line`, to quote a library's error inside one of them."""


class FeatureChangerError(Exception):
    """A problem with the user's input or setup; the message says what was wrong and what to do."""


class DataError(FeatureChangerError):
    """A dataset, shard set or file on disk is missing or malformed."""


class ConfigError(FeatureChangerError):
    """A setting or option has a value that cannot work."""


def first_line(message: object, default: str = "no reason given") -> str:
    """The first line of an error's message: a library's often runs on with advice or context
    that does not fit a one-line error (or, as torch's, advice not to follow)."""
    return (str(message).strip().splitlines() or [default])[0]
