"""Errors a user can cause and fix. The CLI shows their message without a traceback."""


class FeatureChangerError(Exception):
    """A problem with the user's input or setup; the message says what was wrong and what to do."""


class DataError(FeatureChangerError):
    """A dataset, shard set or file on disk is missing or malformed."""


class ConfigError(FeatureChangerError):
    """A setting or option has a value that cannot work."""
