"""The errors a user sees. Each message names the key, file or value at fault and says how to fix it.

``ConfigError`` is raised for every user mistake (a bad config value, a missing data file, a task's
parameters that do not fit it): entry points print it as one line and exit with status 2.
"""


class ConfigError(ValueError):
    """A user mistake in the configuration or its inputs. The message says which key and how to fix it."""


class Stopped(Exception):
    """The run stopped on a signal (SIGTERM from a spot machine's notice, SIGINT from Ctrl-C) after saving a
    checkpoint; ``resume=auto`` with the same ``output_dir`` continues it."""

    def __init__(self, signal_name: str, step: int, run_dir: str):
        super().__init__(f"stopped by {signal_name} at step {step}; the checkpoint is in {run_dir}/checkpoints")
        self.signal_name, self.step, self.run_dir = signal_name, step, run_dir
