"""docs/API.md is generated from the package by tools/apidoc.py (`make api`) and must be current."""
import difflib
import textwrap

import pytest

from tools import apidoc


def test_api_md_is_what_the_code_says():
    fresh, committed = apidoc.generate(), apidoc.OUT.read_text()
    if fresh != committed:
        diff = "".join(list(difflib.unified_diff(committed.splitlines(True), fresh.splitlines(True),
                                                 "docs/API.md", "fresh generation"))[:60])
        pytest.fail(f"docs/API.md is stale: run `make api` (python tools/apidoc.py)\n{diff}")


def test_a_changed_default_or_docstring_changes_the_page(tmp_path, monkeypatch):
    def page(default: int, doc: str) -> str:
        name = f"fake_api_{default}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(f'''\
            """A fake module: one idea.

            More detail that is not shown.
            """
            from __future__ import annotations
            from pathlib import Path

            MIN_SIZE = {default}
            """The smallest input."""


            def image_size(r: float, min_size: int = {default}) -> int:
                """{doc}

                Not this paragraph."""
                return max(min_size, int(224 * r))


            class Box:
                """A box."""

                def __init__(self, side: int = 3):
                    self.side = side

                def area(self) -> int:
                    """Side squared."""
                    return self.side ** 2

                def _hidden(self):
                    pass


            def _private():
                pass
            '''))
        monkeypatch.syspath_prepend(str(tmp_path))
        return apidoc.describe(name)

    a = page(24, "Input side in pixels.")
    assert a == (f"## `fake_api_24`\n\nA fake module: one idea.\n\n"
                 "- `MIN_SIZE = 24`: The smallest input.\n"
                 "- `image_size(r: float, min_size: int = 24) -> int`: Input side in pixels.\n"
                 "- `class Box(side: int = 3)`: A box.\n"
                 "  - `.area() -> int`: Side squared.\n")
    b = page(32, "Input side in px.")
    assert "min_size: int = 32" in b and "Input side in px." in b and "= 24" not in b
