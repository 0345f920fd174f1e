"""Ids that become file names: plain names pass unchanged, anything that could leave the folder is refused."""
from __future__ import annotations

import pytest

from tclap.errors import DataError
from tclap.names import file_id


@pytest.mark.parametrize("value", ["mix000001", "Y-abc_DEF.5", "dog bark 1", "ünïcode", "a..b", "x" * 200])
def test_plain_file_names_pass_unchanged(value):
    assert file_id(value, "p.csv:2") == value


@pytest.mark.parametrize("value, problem", [
    ("", "is empty"), ("   ", "is empty"), (" x", "white space"), ("../x", "path separator"), ("a/b", "path separator"),
    ("a\\b", "path separator"), ("..", "starts with '.'"), (".x", "starts with '.'"), ("a\x00b", "control character"),
    ("CON", "reserved device name"), ("lpt1.wav", "reserved device name"), ("x" * 201, "longer than 200"),
])
def test_ids_that_are_not_one_plain_file_name_are_refused_naming_where(value, problem):
    with pytest.raises(DataError, match=rf"p.csv:2: id .* {problem}"):
        file_id(value, "p.csv:2")
