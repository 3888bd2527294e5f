"""The verifier rejects broken graphs with messages that name the node."""

import pytest

from ember.ir import VerifyError, ops, verify
from ember.ir.graph import Graph, GraphBuilder, Node, Provenance, Value
from ember.ir.types import TensorType, float32, int64


def small() -> Graph:
    g = Graph("g")
    x = g.add_input(TensorType(float32, (2, 3)), "x")
    with GraphBuilder(g, Provenance("blk (Linear)", "m.py", 4)):
        y = ops.exp(x)
        z = ops.add(y, x)
    g.outputs = [z]
    return g


def test_valid_graph_passes():
    g = small()
    assert verify(g) is g


def test_wrong_declared_type_names_node_and_provenance():
    g = small()
    g.nodes[0].output.type = TensorType(float32, (3, 2))
    with pytest.raises(VerifyError) as info:
        verify(g)
    msg = str(info.value)
    assert "%1: f32[2,3] = add(%0, %x)" in msg or "exp" in msg
    assert "blk (Linear) @ m.py:4" in msg


def test_type_rule_failure():
    g = small()
    g.nodes[1].inputs[1] = g.add_input(TensorType(int64, (2, 3)), "i")
    with pytest.raises(VerifyError, match="fails its type rule: .*dtypes differ"):
        verify(g)


def test_use_before_definition_is_a_topological_order_error():
    g = small()
    g.nodes.reverse()
    with pytest.raises(VerifyError, match="used before its definition"):
        verify(g)


def test_foreign_value():
    g = small()
    other = Value("ghost", TensorType(float32, (2, 3)))
    g.nodes[1].inputs[0] = other
    with pytest.raises(VerifyError, match="%ghost of node .* not defined in this graph"):
        verify(g)


def test_redefinition_breaks_ssa():
    g = small()
    g.nodes[1].output.name = "0"
    with pytest.raises(VerifyError, match="redefines %0"):
        verify(g)


def test_unknown_op_and_attributes():
    g = small()
    g.nodes[0].op = "nosuchop"
    with pytest.raises(VerifyError, match="unknown op 'nosuchop'"):
        verify(g)
    g = small()
    with GraphBuilder(g):
        p = ops.permute(g.inputs[0], dims=(1, 0))
    p.producer.attrs["extra"] = 1
    with pytest.raises(VerifyError, match=r"unknown attributes \['extra'\]"):
        verify(g)
    del p.producer.attrs["extra"]
    del p.producer.attrs["dims"]
    with pytest.raises(VerifyError, match=r"lacks attributes \['dims'\]"):
        verify(g)


def test_bad_attribute_value():
    g = small()
    with GraphBuilder(g):
        p = ops.permute(g.inputs[0], dims=(1, 0))
    p.producer.attrs["dims"] = (0, 0)
    with pytest.raises(VerifyError, match="not a permutation"):
        verify(g)


def test_undefined_output_and_bad_role():
    g = small()
    g.outputs = [Value("nowhere", TensorType(float32, ()))]
    with pytest.raises(VerifyError, match="output 0 %nowhere"):
        verify(g)
    g = small()
    g.input_roles["x"] = "weights"
    with pytest.raises(VerifyError, match="role 'weights'"):
        verify(g)


def test_producer_link():
    g = small()
    g.nodes[0].output.producer = None
    with pytest.raises(VerifyError, match="does not point back"):
        verify(g)


def test_fused_body_type_mismatch():
    body = Graph("body")
    a = body.add_input(TensorType(float32, (2, 3)), "a")
    with GraphBuilder(body):
        body.outputs = [ops.exp(a)]
    g = Graph("g")
    x = g.add_input(TensorType(float32, (2, 3)), "x")
    out = Value("f", TensorType(float32, (3, 2)))
    n = Node("fused", [x], {"pattern": "p"}, out, Provenance(), body)
    out.producer = n
    g.nodes.append(n)
    g.outputs = [out]
    with pytest.raises(VerifyError, match="fused"):
        verify(g)
    out.type = TensorType(float32, (2, 3))
    verify(g)
