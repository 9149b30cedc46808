"""Padded tokens out of calibration statistics: only positions where ``attention_mask`` is 1 count.

A batch of sentences is padded to its longest row; the padded positions still flow through an
encoder (the mask only hides them as attention keys), so their activations are real numbers that
a sentence embedding never reads. Per-channel statistics (means for compensation, variances and
energies for importance, Gram matrices for the re-fit) must therefore be taken over valid
tokens only.

The mask is the model input called ``attention_mask`` (or ``input_mask``) of rank 2,
``[batch, sequence]``. Its two axes are found in every calibrated tensor from the shapes that
analysis inferred:

* symbolic dimensions: shape inference carries the input's dimension names (``batch``,
  ``sequence``) through the graph, so ``[batch, heads, sequence, head_dim]`` has its sequence
  at axis 2 whatever reshapes and transposes came before;
* fixed sizes: the axis with the mask's size, when exactly one axis (other than the channel
  axis) has it; a batch of 1 needs no batch axis.

A tensor where the sequence axis cannot be told apart (two axes named ``sequence``, as attention
scores, or two axes of the same fixed size) or is missing (tokens flattened into rows) is
calibrated over every position, with one log line naming it.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from ..rules.base import Space
from ..vocabulary import MASK_INPUT_NAMES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenMask:
    """Which graph input is the mask, and where its (batch, sequence) axes are in each tensor.

    ``axes[tensor]`` is ``(batch axis or None, sequence axis)``; tensors not listed are not masked.
    """

    input: str
    axes: Mapping

    def valid(self, feed: Mapping, tensor: str, shape: tuple) -> np.ndarray | None:
        """A boolean array of ``len(shape)`` axes, broadcastable to ``shape``: True on real tokens
        (None when ``tensor`` is not masked or the feed's mask does not fit its shape)."""
        where = self.axes.get(tensor)
        mask = feed.get(self.input)
        if where is None or mask is None:
            return None
        mask = np.asarray(mask) != 0
        batch_axis, sequence_axis = where
        if mask.ndim != 2 or shape[sequence_axis] != mask.shape[1]:
            return None
        target = [1] * len(shape)
        target[sequence_axis] = mask.shape[1]
        if batch_axis is None:
            return mask.reshape(target) if mask.shape[0] == 1 else None
        if shape[batch_axis] != mask.shape[0]:
            return None
        target[batch_axis] = mask.shape[0]
        return (mask.T if batch_axis > sequence_axis else mask).reshape(target)


def find_mask_input(index) -> str | None:
    """The graph input that holds the attention mask (rank 2), or None."""
    for name in index.graph_inputs:
        if name.lower() in MASK_INPUT_NAMES and index.rank(name) == 2:
            return name
    return None


def _axis_of(dims: tuple, wanted, skip: int) -> int | None:
    """The one axis of ``dims`` (other than ``skip``) equal to ``wanted``; None if none or several."""
    if wanted is None:
        return None
    hits = [axis for axis, d in enumerate(dims) if axis != skip and d == wanted]
    return hits[0] if len(hits) == 1 else None


def token_axes(mask_dims: tuple, dims: tuple | None, channel_axis: int) -> tuple[int | None, int] | None:
    """``(batch axis, sequence axis)`` of a tensor of ``dims`` for a mask of ``mask_dims``, or None."""
    if dims is None or len(mask_dims) != 2:
        return None
    batch, sequence = mask_dims
    sequence_axis = _axis_of(dims, sequence, channel_axis)
    if sequence_axis is None:
        return None
    batch_axis = _axis_of(dims, batch, channel_axis)
    if batch_axis is None and batch != 1:
        return None
    return batch_axis, sequence_axis


def token_mask(index, spaces: Iterable[Space]) -> TokenMask | None:
    """The mask input and its axes in every tensor of ``spaces`` that can be masked (see module doc)."""
    name = find_mask_input(index)
    if name is None:
        return None
    mask_dims = index.shape(name)
    axes, unmasked = {}, []
    for space in sorted(set(spaces)):
        found = token_axes(mask_dims, index.shape(space.tensor), space.axis)
        if found is None:
            unmasked.append(space.tensor)
        else:
            axes[space.tensor] = found
    if unmasked:
        log.info("calibration: %d tensors have no identifiable sequence axis and are calibrated over padded "
                 "positions too (first: %s)", len(unmasked), unmasked[0])
    log.debug("calibration: padded tokens (%s == 0) left out of %d tensors", name, len(axes))
    return TokenMask(name, axes)
