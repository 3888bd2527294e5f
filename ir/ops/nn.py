"""Convolution and pooling primitives (conv2d, conv_transpose2d, max/avg pooling).

Filled in by the nn work; registered here so every facet lives beside the others.
"""
