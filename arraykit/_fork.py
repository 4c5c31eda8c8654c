"""Whether this process is a fork of the one that imported arraykit.

An OpenMP runtime does not survive a fork: its threads stay behind in the
parent while the child's copy of the runtime still counts on them, so a
parallel region started in the child waits for them forever (torch's own
operators hang there too, once the parent's ran threaded work). The compiled
kernels therefore join torch's OpenMP team only in a process that was not
forked after ``import arraykit`` (see ``share_threads`` in
:mod:`arraykit._native.torch`); a forked child uses arraykit's own pool,
which the kernels rebuild after a fork. Registered when the package is
imported, which imports this module alone; it imports only :mod:`os`.
"""

import os

forked = False
"""Whether this process was forked from one that had imported arraykit."""


def _mark_forked() -> None:
    global forked
    forked = True


if hasattr(os, "register_at_fork"):  # absent on Windows, which has no fork
    os.register_at_fork(after_in_child=_mark_forked)
