"""User errors: problems with what the user asked for or with their machine, not bugs in rubik.

``rubik.cli.main`` prints any :class:`UserError` (and any ``OSError``: a full disk, a read-only
folder) as one line, ``rubik CMD: error: MESSAGE``, and exits with status 2, instead of a traceback.
Library callers get ordinary exceptions: each concrete error also derives from the builtin it
refines (``ConfigError`` is a ``ValueError``, ``DataError`` a ``RuntimeError``), so
``except ValueError`` keeps working.
"""


class UserError(Exception):
    """An error the user can fix; the message says what is wrong and where (one line is enough)."""


class ConfigError(UserError, ValueError):
    """A bad argument or setting (unknown model, ``epochs <= 0``, a wrongly typed parameter ...)."""


class RunDirError(UserError, RuntimeError):
    """A run or sweep directory that cannot be used as asked (it holds another run, is in use, ...)."""


class UnsafeFileError(UserError, ValueError):
    """A data file (a checkpoint) that would run code if read: rubik reads tensors and plain values only."""


class ReproduceError(UserError, RuntimeError):
    """A ``rubik reproduce`` error the user can fix: a bad preset or parameter, missing data, a failing
    notebook (``rubik.preset``, ``rubik.runner``, the notebooks' helpers in ``rubik.reproduce``)."""

    def _render_traceback_(self):  # IPython/Jupyter show the one line, not a traceback
        return [f"{type(self).__name__}: {self}"]


class Interrupted(UserError):
    """Ctrl-C in a command: the message says what was kept and how to go on. ``rubik.cli.main`` prints
    it as one line, ``rubik CMD: interrupted: MESSAGE``, and exits with status 130 (a shell's status
    for SIGINT), without a traceback. Library callers get the plain ``KeyboardInterrupt``."""
