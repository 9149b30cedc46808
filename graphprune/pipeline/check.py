"""Stage ``check``: the pruned model against its oracle (must match) and against the original (drift).

The oracle is the prepared model with every removed slot's consumer slices zeroed: the pruned
model must compute what it computes, up to float summation order. Drift is informative: how far
the outputs moved from the original's, on the user's data or seeded random inputs.
"""
from __future__ import annotations

from ..errors import ValidationFailed
from .options import Options
from .values import Checked, Pruned, Source

#: the pruned model must match its oracle to this tolerance: dropping zero terms only changes
#: float summation order
ORACLE_RTOL, ORACLE_ATOL = 1e-4, 1e-5
#: ... or, output by output, to this fraction of the output's largest magnitude (max |c - r| / max |r|):
#: in a deep network the summation-order noise of float32 grows with the activations (a 100-layer
#: detector on random inputs reaches ~1e-5 of its output scale), while a wrong channel shows at 1e-2
ORACLE_SCALE_RTOL = 1e-4


def check(pruned: Pruned, source: Source, options: Options) -> Checked:
    from ..graph.model import to_proto
    from ..validation import validate

    candidate = to_proto(pruned.model)
    oracle = validate(pruned.oracle_reference, candidate, samples=options.samples or 2,
                      input_shapes=options.input_shapes, seed=options.seed, rtol=ORACLE_RTOL, atol=ORACLE_ATOL,
                      rtol_of_scale=ORACLE_SCALE_RTOL, progress=options.progress)
    if not oracle.passed:
        raise ValidationFailed("internal consistency check failed: the pruned model does not compute what the "
                               "original computes without the removed channels; nothing was written "
                               "(please report this model)")
    drift = validate(source.proto, candidate, data=options.data, samples=options.samples,
                     input_shapes=options.input_shapes, seed=options.seed, progress=options.progress,
                     image_options=options.image_options)
    return Checked(oracle, drift)
