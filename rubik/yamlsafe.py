"""YAML as presets and ``-p KEY=VALUE`` values are read: safe, strict and with one meaning.

``load`` is ``yaml.safe_load`` (no ``!!python`` objects) that also refuses what reads as something
its writer did not mean or costs more than a file's size to read:

* aliases (``*name``): a 485-byte file of nested aliases expands to gigabytes ("billion laughs"), and
  one that refers to itself never ends; a preset repeats a value instead;
* duplicate keys (``{epochs: 1, epochs: 7}``): PyYAML keeps the last one silently;
* YAML 1.1 integers that YAML 1.2 reads otherwise or not at all: ``010`` (octal 8 in 1.1, 10 in 1.2),
  ``0x10``, ``0o10``, ``0b10``, ``1_000``, ``1:30`` (sexagesimal). They are refused, not reinterpreted:
  write ``10`` (or quote it, ``'010'``, for the string).

Every refusal, and any syntax error, is a ``yaml.YAMLError``; ``problem(e)`` is its one-line reason.
"""
from __future__ import annotations

import re

import yaml

_PLAIN_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")


class _StrictLoader(yaml.SafeLoader):
    def compose_node(self, parent, index):
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"aliases (*{event.anchor}) are not allowed here; repeat "
                                              "the value instead", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node):
        text = str(node.value)
        if not _PLAIN_INT.fullmatch(text):
            raise yaml.constructor.ConstructorError(
                None, None, f"{text!r} is a YAML 1.1 integer (octal, hex, binary, 1_000 or 1:30) that YAML 1.2 "
                "reads otherwise: write it in decimal, or quote it for a string", node.start_mark)
        return super().construct_yaml_int(node)


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)


def load(stream):
    """``yaml.safe_load(stream)``, strict as the module says (a ``yaml.YAMLError`` otherwise)."""
    return yaml.load(stream, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)


def problem(e: BaseException) -> str:
    """One line saying what is wrong with a YAML text and where (line, column)."""
    if isinstance(e, yaml.MarkedYAMLError):
        where = f"line {e.problem_mark.line + 1}, column {e.problem_mark.column + 1}: " if e.problem_mark else ""
        return where + " ".join(f"{e.context or ''} {e.problem or ''}".split())
    if isinstance(e, UnicodeDecodeError):
        return "not a text file"
    return " ".join(str(e).split())


__all__ = ["load", "problem"]
