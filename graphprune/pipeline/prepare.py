"""Stage ``prepare``: normalize the model (unique names, constants lifted) and fold BatchNorm, once."""
from __future__ import annotations

from ..passes.normalize import normalize
from .options import Options
from .values import Prepared, Source


def prepare(source: Source, options: Options) -> Prepared:
    model = source.editable()
    if options.keep_bn:
        return Prepared(source, model, None, unchanged=not normalize(model).modified)
    from ..passes.fold import fold

    result = fold(model, strict_initializer_inputs=options.strict_initializer_inputs,  # normalizes first
                  source=source.proto)
    return Prepared(source, result.graph, result, unchanged=not result.modified, skeleton=result.skeleton,
                    shapes=result.shapes)
