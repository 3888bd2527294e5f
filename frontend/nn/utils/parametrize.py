"""Placeholder for ``torch.nn.utils.parametrize`` (not supported by ember)."""


def is_parametrized(module, tensor_name=None) -> bool:
    return False
