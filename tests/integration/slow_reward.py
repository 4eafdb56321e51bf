"""A reward that takes a second a step, for tests that must act between two steps of a tiny run (whose steps would
otherwise end before a spot notice is seen). Its value is test_resume's: distinct characters of each completion."""

import time


def slow_variety(completions, **_):
    time.sleep(1.0)
    return [float(len(set(c))) for c in completions]
