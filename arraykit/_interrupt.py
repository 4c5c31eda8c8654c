"""Whether an exception is Ctrl-C's, for the command's two entries (``__main__`` and ``cli``).

It imports nothing, so that ``arraykit.__main__`` can hold it before anything
heavy is imported.
"""


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
