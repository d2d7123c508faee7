"""``rubik`` / ``python -m rubik``: one entry point, one sub-command per module.

Each module that offers a sub-command defines ``add_arguments(parser)`` and
``main(args) -> int``; they are imported only when their command is used, so
``rubik models`` does not pay for pandas or papermill.
"""
import argparse
import sys
from importlib import import_module

# command -> (module, one-line help)
COMMANDS = {
    "models": ("rubik.models.cli", "table of registered models: dials, params, FLOPs vs the paper"),
    "train": ("rubik.train", "train one (twisted) model with a recipe; torchrun-ready"),
    "sweep": ("rubik.sweep", "sample twisted models and train them all (resumable, parallel)"),
    "reproduce": ("rubik.reproduce", "run the notebooks in order with papermill for a preset"),
    "validate": ("rubik.validate", "top-1/top-5 of released, given or trained weights on an ImageFolder split"),
    "latency": ("rubik.latency", "measure forward-pass latency of a model, a twist, or every trial of a sweep"),
}


def build_parser():
    parser = argparse.ArgumentParser(prog="rubik", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # arguments are added lazily below, only for the chosen command
    return parser, sub


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, sub = build_parser()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints help / the error for an unknown command
        return 2
    module = import_module(COMMANDS[argv[0]][0])
    module.add_arguments(sub.choices[argv[0]])
    args = parser.parse_args(argv)
    return int(module.main(args) or 0)
