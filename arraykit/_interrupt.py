"""Ctrl-C for the command's two entries (``__main__`` and ``cli``): one line, exit 130.

It imports only what the interpreter has already loaded (and ``signal``,
when the command starts watching for Ctrl-C), so that ``arraykit.__main__``
can hold it before anything heavy is imported.
"""

import os
import sys

INTERRUPTED = 130
"""Exit status after Ctrl-C: 128 + SIGINT, as a shell reports it."""

MESSAGE = "arraykit: interrupted\n"


_pressed = False
"""Whether Ctrl-C has come since :func:`watch_ctrl_c`."""


def _on_ctrl_c(signum: int, frame: object) -> None:
    global _pressed
    _pressed = True
    raise KeyboardInterrupt


def watch_ctrl_c() -> None:
    """Mark Ctrl-C when it comes, and then raise KeyboardInterrupt as Python's own
    handler does.

    What an interrupt becomes on its way out is not always a KeyboardInterrupt
    with a chain to follow: during NumPy's import, one that lands in the C
    import of ``datetime`` comes out as NumPy's ImportError, with no trace of
    it. Once marked, any error that follows is the interrupt's doing. (Until
    ``signal`` is imported here, Python's own handler raises it as usual.)
    """
    import signal

    signal.signal(signal.SIGINT, _on_ctrl_c)


def from_ctrl_c(exc: BaseException) -> bool:
    """Whether ``exc`` is Ctrl-C's KeyboardInterrupt, or an error it caused.

    Python 3.11 wraps a KeyboardInterrupt raised in a class's ``__set_name__``
    (a class body of a module being imported, NumPy's among them) in a
    RuntimeError whose cause is the interrupt. Errors after Ctrl-C came (see
    :func:`watch_ctrl_c`) are its doing, whatever they say.
    """
    if _pressed:
        return True
    seen: BaseException | None = exc
    for _ in range(8):  # a short chain: the wrapping is one or two deep
        if seen is None:
            return False
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def end_on_swallowed_ctrl_c(unraisable: "sys.UnraisableHookArgs") -> None:
    """``sys.unraisablehook`` for the command: Ctrl-C that Python would swallow ends it.

    A KeyboardInterrupt raised in a weakref callback or a ``__del__`` (as in
    importlib's module locks, during an import) cannot propagate: Python
    prints it as "Exception ignored" and goes on. The command ends there
    instead, as Ctrl-C anywhere else ends it. Anything else goes to Python's
    own hook.
    """
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        sys.__unraisablehook__(unraisable)
        return
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 (contextlib is not imported yet, and need not be)
            stream.flush()
        except Exception:  # a closed pipe: nothing more to say there
            pass
    os.write(2, MESSAGE.encode())
    os._exit(INTERRUPTED)  # no unwinding: the interrupt has nowhere to go
