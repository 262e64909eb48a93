"""Attribute coercion (loading/coerce.py): the fast path of label lists."""

from __future__ import annotations

import random

import pytest

from buildpy.core.label import PackageId
from buildpy.loading.coerce import (
    CoercionError, _label, _label_strings, _list, _no_duplicates, _output, coerce_value,
)
from buildpy.loading.rule_class import AttrSpec


def _outcome(coerce):
    try:
        return coerce()
    except CoercionError as e:
        return ("error", e.message, e.hint)


def _item_by_item(spec, value, package):
    one = _output if spec.type == "output_list" else _label
    result = _list(spec, value, lambda v: one(spec, v, package))
    _no_duplicates(spec, result)
    return result


@pytest.mark.parametrize("kind", ["label_list", "output_list"])
def test_label_lists_coerce_alike_on_both_paths(kind):
    """A list of label strings is parsed in one comprehension (_label_strings); random
    lists of good and bad labels, Label() values, outputs of other packages, other types
    and empty lists give what the item-by-item path gives, values and errors alike."""
    rng = random.Random(7)
    package = PackageId("", "a/b")
    items = ["x", ":y", "//p:q", "//p", "@r//s:t", "//a/../b", "", "a:b", ":x", 3, None,
             "//a/b:o", "//a:b", "@r//a/b:o",
             {"__bp_label__": "//l:m", "name": "m"}, ["nested"], "dir/f.txt"]
    fast = 0
    for _ in range(5000):
        value = [rng.choice(items) for _ in range(rng.randint(0, 4))]
        if rng.random() < 0.05:
            value = rng.choice(items)   # not a list at all
        spec = AttrSpec("deps", kind, allow_empty=rng.random() < 0.8)
        got = _outcome(lambda: coerce_value(spec, value, package))
        assert got == _outcome(lambda: _item_by_item(spec, value, package)), value
        fast += _label_strings(spec, value, package, kind == "output_list") is not None
    assert fast > 1000
