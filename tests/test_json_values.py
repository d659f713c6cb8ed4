"""trainer.json_values decodes every stored JSON value exactly as the standard library would."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from trainer.json_values import loads

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(_values)
def test_same_as_the_standard_library(value: object) -> None:
    text = json.dumps(value)
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)


def test_integers_beyond_64_bits_stay_exact() -> None:
    assert loads(b'{"n": 123456789012345678901234567890}') == {"n": 123456789012345678901234567890}
    assert loads(str(-(2**70))) == -(2**70)


def test_what_orjson_refuses_still_decodes() -> None:
    assert math.isnan(loads(b"NaN"))
    assert loads('{"a": Infinity}') == {"a": math.inf}
