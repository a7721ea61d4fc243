"""The README's Python examples run as written (doctest)."""

import doctest

from conftest import ROOT


def test_readme_examples(monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples name task files relative to the repository
    result = doctest.testfile(str(ROOT / "README.md"), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 15
    assert result.failed == 0
