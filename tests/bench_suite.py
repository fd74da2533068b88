"""A benchmark suite for `test_benchmarks.py`: contenders that succeed,
raise, crash their process, take a second a call or hang, with no keras import, so that a child
process running it starts in a fraction of a second."""

import os
import time


def build(contender, backend, mode, params):
    if contender == "raises":
        raise ValueError("refused")
    if contender == "crashes":
        return lambda: os._exit(3)
    if contender == "hangs":
        return lambda: time.sleep(60)
    if contender == "slow":
        return lambda: time.sleep(1.0)
    return lambda: None
