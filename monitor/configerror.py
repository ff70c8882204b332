"""``ConfigError``: a configuration value that cannot be used. Its own module so that every settings
dataclass (schedule, lifecycle, …) can raise it without importing the whole configuration."""


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names file and key."""
