"""Named result tuples returned by PyTorch functions (``torch.return_types``).

``x.max(dim)`` returns ``return_types.max(values, indices)``: a tuple that unpacks as
``values, indices`` and prints like PyTorch's.
"""

from collections import namedtuple


def _result_type(name: str, fields=("values", "indices")):
    base = namedtuple(name, fields)

    def __repr__(self) -> str:
        body = ",\n".join(f"{f}={getattr(self, f)!r}" for f in fields)
        return f"ember.return_types.{name}(\n{body})"

    cls = type(name, (base,), {"__slots__": (), "__repr__": __repr__, "__module__": "ember.return_types"})
    return cls


max = _result_type("max")  # noqa: A001 - PyTorch's names
min = _result_type("min")  # noqa: A001
sort = _result_type("sort")
topk = _result_type("topk")
kthvalue = _result_type("kthvalue")
mode = _result_type("mode")
median = _result_type("median")
aminmax = _result_type("aminmax", ("min", "max"))

# older names kept for callers inside ember
MinMaxResult = max
SortResult = sort
TopKResult = topk
