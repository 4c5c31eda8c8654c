"""The ``arraykit`` command's entry: ``python -m arraykit`` and the installed script.

The command is imported inside :func:`main`, so that Ctrl-C at any moment,
its imports included, is one line and exit status 130 (the package's own
``__init__`` imports nothing heavy).
"""

import sys

from ._interrupt import INTERRUPTED, MESSAGE, end_on_swallowed_ctrl_c, from_ctrl_c, watch_ctrl_c


def main() -> int:
    """Run ``arraykit`` with the process's arguments; returns its exit status."""
    sys.unraisablehook = end_on_swallowed_ctrl_c
    try:
        watch_ctrl_c()
        from .cli import main as command

        return command()
    except BaseException as exc:  # during the imports; the command handles its own
        if not from_ctrl_c(exc):
            raise
        sys.stderr.write(MESSAGE)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
