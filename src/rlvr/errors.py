"""The errors a user sees. Each message names the key, file or value at fault and says how to fix it.

``ConfigError`` is raised for every user mistake (a bad config value, a missing data file, a task's
parameters that do not fit it): entry points print it as one line and exit with status 2.
"""


class ConfigError(ValueError):
    """A user mistake in the configuration or its inputs. The message says which key and how to fix it."""


class Stopped(Exception):
    """The run stopped early after saving a checkpoint: on a signal (SIGTERM from a spot machine's notice, SIGINT
    from Ctrl-C; ``reason`` is its name) or on a non-finite loss with ``train.on_nonfinite_loss=stop`` (``reason``
    says so); ``resume=auto`` with the same ``output_dir`` continues it. ``step`` is None when the signal came
    outside training (loading, evaluating): nothing new was saved, the latest checkpoint is the resume point."""

    def __init__(self, reason: str, step: int | None, run_dir: str):
        where = (f"at step {step}; the checkpoint is in" if step is not None
                 else "outside training; the latest checkpoint (if any) is kept in")
        super().__init__(f"stopped by {reason} {where} {run_dir}/checkpoints")
        self.reason, self.step, self.run_dir = reason, step, run_dir

    @property
    def signal(self) -> int | None:
        """The number of the signal that stopped the run, or None when something else did."""
        import signal

        return int(signal.Signals[self.reason]) if self.reason in signal.Signals.__members__ else None


class DiskFull(OSError):
    """The disk filled up while the run wrote a checkpoint or a file of its run directory. The write was atomic, so
    what was there before (the previous checkpoint, ``results.json``) is intact; the message says what could not
    be written, and rerunning the same command resumes once there is space."""

    def __str__(self) -> str:
        return str(self.strerror)  # the one line, without "[Errno 28]"


def no_space(error: BaseException) -> bool:
    """Whether ``error`` is the operating system saying the disk (or the user's quota) is full."""
    import errno

    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
