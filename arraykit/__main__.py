"""The ``arraykit`` command's entry: ``python -m arraykit`` and the installed script.

The command is imported inside :func:`main`, so that Ctrl-C at any moment,
its imports included, is one line and exit status 130 (the package's own
``__init__`` imports nothing heavy).
"""

import sys


def main() -> int:
    """Run ``arraykit`` with the process's arguments; returns its exit status."""
    try:
        from .cli import main as command

        return command()
    except BaseException as exc:  # during the imports; the command handles its own
        if not from_ctrl_c(exc):
            raise
        sys.stderr.write("arraykit: interrupted\n")
        return 130


def from_ctrl_c(exc: BaseException) -> bool:
    """Whether ``exc`` is Ctrl-C's KeyboardInterrupt, or an error it caused.

    Python 3.11 wraps a KeyboardInterrupt raised in a class's ``__set_name__``
    (a class body of a module being imported, NumPy's among them) in a
    RuntimeError whose cause is the interrupt.
    """
    seen: BaseException | None = exc
    for _ in range(8):  # a short chain: the wrapping is one or two deep
        if seen is None:
            return False
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


if __name__ == "__main__":
    sys.exit(main())
