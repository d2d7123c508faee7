"""``rubik`` / ``python -m rubik``: one entry point, one sub-command per module.

Each module that offers a sub-command defines ``add_arguments(parser)`` and
``main(args) -> int``; they are imported only when their command is used, so
``rubik models`` does not pay for pandas or papermill.

Errors the user can fix (``rubik.errors.UserError``: bad settings, missing data, a run
directory in use; and ``OSError``: a full disk, a read-only folder) end every command the
same way: one line ``rubik CMD: error: MESSAGE`` on stderr and exit status 2, no traceback
(``RUBIK_DEBUG=1`` shows it). Modules raise them; only this file prints them. Under torchrun, an
error that every rank raises (``reported_by``: the rank whose message it is) is printed by that rank
only, and every rank exits with status 2. Ctrl-C is one line too (``rubik.errors.Interrupted``: what
was kept and how to resume; status 130).
"""
import argparse
import os
import sys
from importlib import import_module

from rubik.errors import Interrupted, UserError

# command -> (module, one-line help: plain text, as --help prints it; tests/test_docs_match.py)
COMMANDS = {
    "models": ("rubik.models.cli", "table of registered models: dials, params, FLOPs vs the paper"),
    "train": ("rubik.train", "train one (twisted) model with a recipe; torchrun-ready"),
    "sweep": ("rubik.sweep_cli", "sample twisted models and train them all (resumable, parallel)"),
    "data": ("rubik.compact", "dataset tools: rubik data compact makes a small copy to carry to a GPU node"),
    "report": ("rubik.report", "print the numbers REPORT.md quotes, recomputed from a finished run's records"),
    "figures": ("rubik.headline", "redraw a finished run's headline figures from its records (no training)"),
    "study": ("rubik.study", "the decisive experiments (schedules, dial ladders) as one sweep"),
    "reproduce": ("rubik.runner", "run the notebooks in order with papermill for a preset"),
    "validate": ("rubik.validate", "top-1/top-5 of released, given or trained weights on an ImageFolder split"),
    "drnet": ("rubik.drnet.experiment", "DRNet: per-image input resolution (train both stages, routed eval, report)"),
    "checkpoint": ("rubik.runstate", "rewrite an older trusted checkpoint so it loads without pickle "
                   "(convert --trust FILE)"),
    "ghostnet": ("rubik.ghostnet_family", "GhostNet-B/C/D reconstructed from the appendix's params and FLOPs, "
                                          "and their peers"),
    "latency": ("rubik.latency", "measure forward-pass latency of a model, a twist, or every trial of a sweep"),
}


def build_parser():
    parser = argparse.ArgumentParser(prog="rubik", description="rubik (or python -m rubik): one entry point, one "
                                                               "sub-command per module")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # arguments are added lazily below, only for the chosen command
    return parser, sub


def format_error(command: str, exc: BaseException) -> str:
    """``rubik CMD: error: MESSAGE``: one line (an OSError names its file and the cause)."""
    if isinstance(exc, OSError) and exc.strerror:
        msg = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        msg = str(exc) or type(exc).__name__
    return f"rubik {command}: error: " + "; ".join(" ".join(ln.split()) for ln in msg.splitlines() if ln.strip())


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, sub = build_parser()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints help / the error for an unknown command
        return 2
    module = import_module(COMMANDS[argv[0]][0])
    module.add_arguments(sub.choices[argv[0]])
    args = parser.parse_args(argv)
    # "sweep run": the sub-command's own action, if it has one (dest "<name>_command")
    action = next((v for k, v in vars(args).items() if k.endswith("_command") and isinstance(v, str)), None)
    command = f"{argv[0]} {action}" if action else argv[0]
    try:
        status = int(module.main(args) or 0)
        sys.stdout.flush()   # a closed pipe shows here, not in the interpreter's exit flush
        return status
    except BrokenPipeError:   # `rubik sweep status DIR | head -1`: the reader had what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # so the exit flush is silent too
        return 0
    except (UserError, OSError, KeyboardInterrupt) as e:
        if os.environ.get("RUBIK_DEBUG"):
            raise
        if isinstance(e, (Interrupted, KeyboardInterrupt)):
            print(f"rubik {command}: interrupted" + (f": {e}" if str(e) else ""), file=sys.stderr)
            return 130
        if getattr(e, "reported_by", None) in (None, int(os.environ.get("RANK", "0"))):
            print(format_error(command, e), file=sys.stderr)
        return 2
