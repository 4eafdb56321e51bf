"""The errors a user sees. Each message names the key, file or value at fault and says how to fix it.

``ConfigError`` is raised for every user mistake (a bad config value, a missing data file, a task's
parameters that do not fit it): entry points print it as one line and exit with status 2.
"""


class ConfigError(ValueError):
    """A user mistake in the configuration or its inputs. The message says which key and how to fix it."""
