"""Malformed IR text gives a clean ParseError naming line and column; never a crash or a hang."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember.ir import ParseError, parse

GOOD = """\
graph mlp(%x: f32[B,784], param %fc1.weight: f32[128,784], param %fc1.bias: f32[128]) -> (%4: f32[B,128]) {
  meta {note="hi", sizes=(1,(2,3)), d={"k": [1.5,-2]}}
  %0: f32[784,128] = permute(%fc1.weight) {dims=(1,0)}  # fc1 (Linear) @ model.py:12
  %1: f32[B,128] = matmul(%x, %0)  # fc1 (Linear) @ model.py:12
  %2: f32[B,128] = broadcast_to(%fc1.bias) {shape=(B,128)}
  %3: f32[B,128] = add(%1, %2)
  %c: f32[2] = constant() {value=tensor<f32[2]>[1.0, -inf]}
  %4: f32[B,128] = relu(%3)  # @ m.py:3
}"""


def test_good_text_parses():
    g = parse(GOOD)
    assert len(g.nodes) == 6 and g.meta["sizes"] == (1, (2, 3))


@pytest.mark.parametrize("bad,needle", [
    ("", "expected 'graph'"),
    ("graph g(%x: f32[2]) -> (%x: f32[2]) {", "missing '}'"),
    ("graph g(%x: f99[2]) -> (%x: f99[2]) {}", "unknown dtype 'f99'"),
    ("graph g(%x: f32[2]) -> (%y: f32[2]) {}", "output %y is never defined"),
    ("graph g(%x: f32[2]) -> (%x: f32[3]) {}", "declared f32[3]"),
    ("graph g(%x: f32[2], %x: f32[2]) -> () {}", "declared twice"),
    ("graph g(weird %x: f32[2]) -> () {}", "unknown input role 'weird'"),
    ("graph g(%x: f32[2]) -> () {\n  %1: f32[2] = neg(%y)\n}", "line 2, column 20: %y is used before it is defined"),
    ("graph g(%x: f32[2]) -> () {\n  %x: f32[2] = neg(%x)\n}", "defined twice"),
    ("graph g(%x: f32[2]) -> () {\n  %1: f32[2] = frobnicate(%x)\n}", "unknown op 'frobnicate'"),
    ("graph g(%x: f32[2]) -> () {\n  %1: f32[3] = neg(%x)\n}", "neg gives f32[2]"),
    ("graph g(%x: f32[2]) -> () {\n  %1: f32[2] = permute(%x) {dims=(0,0,1)}\n}", "permute"),
    ("graph g(%x: f32[2]) -> () {\n  %1: f32[2] = neg(%x) {a=1, a=2}\n}", "duplicate attribute"),
    ("graph g(%x: f32[2]) -> () {\n  %1: f32[2] = neg(%x) {a=(1,2,)}\n}", "trailing comma"),
    ("graph g() -> () {\n  %1: f32[2] = constant() {value=tensor<f32[2]>[1.0]}\n}", "needs 2 elements"),
    ("graph g() -> () {\n  %1: f32[2] = constant() {value=tensor<f32[B]>[1.0]}\n}", "static shape"),
    ("graph g(%x: f32[2]) -> () {\n  %1: f32[2] = neg(%x)  # m @ file.py:notaline\n}", "FILE:LINE"),
    ("graph g(%x: f32[2]) -> () {} trailing", "unexpected text after the graph"),
    ("graph g(%x: f32[2]) -> () {\n  %1: f32[2] = neg(%x) {a=" + "(" * 500 + "}\n}", "nesting deeper"),
    ("graph g(%x: f32[" + "9" * 5000 + "]) -> () {}", "too long"),
    ('graph g(%x: f32[2]) -> () {\n  %1: f32[2] = neg(%x) {a="\\q"}\n}', "bad string literal"),
])
def test_specific_errors(bad, needle):
    with pytest.raises(ParseError) as info:
        parse(bad)
    assert needle in str(info.value)
    assert str(info.value).startswith("line ")


def test_parse_rejects_non_text():
    with pytest.raises(TypeError):
        parse(b"graph")


_ALPHABET = st.sampled_from(list("%:=(){}[],#@\"'\\.-+*/ \n\tgraphfBx0123456789_eintpuoldsc") + [
    "graph", "f32", "param", "meta", "tensor<", "sha1:", "->", "neg", "add", "permute", "constant", "inf", "nan",
    "true", "none", "%x", "{dims=", "fused", "# ", " @ "])


def _assert_clean(text: str) -> None:
    try:
        parse(text)
    except ParseError as err:
        assert str(err)


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ALPHABET, max_size=80).map("".join))
def test_random_token_soup_gives_only_parse_errors(text):
    _assert_clean(text)


@settings(max_examples=200, deadline=2000)
@given(st.data())
def test_mutated_valid_text_gives_only_parse_errors(data):
    text = GOOD
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(text)))
        kind = data.draw(st.sampled_from(["delete", "insert", "replace", "truncate", "duplicate"]))
        j = min(len(text), i + data.draw(st.integers(1, 12)))
        if kind == "delete":
            text = text[:i] + text[j:]
        elif kind == "insert":
            text = text[:i] + data.draw(_ALPHABET) + text[i:]
        elif kind == "replace":
            text = text[:i] + data.draw(st.text(max_size=6)) + text[j:]
        elif kind == "truncate":
            text = text[:i]
        else:
            text = text[:i] + text[i:j] * 3 + text[j:]
    _assert_clean(text)


@settings(max_examples=200, deadline=2000)
@given(st.text(max_size=200))
def test_arbitrary_unicode_gives_only_parse_errors(text):
    _assert_clean(text)
