"""``graphprune inspect MODEL``: dependency groups, their slots, and why any group is blocked."""
from __future__ import annotations

import argparse
import json

from ..vocabulary import ATTENTION_MODES


def _run(args: argparse.Namespace) -> int:
    from ..api import inspect
    from ..pipeline.load import load

    result = inspect(load(args.model), strict_initializer_inputs=args.strict_initializer_inputs,
                     attention=args.attention, label=args.model)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print("\n".join(result.summary_lines(show_all=args.all)))
    if args.group is not None:
        group = next((g for g in result.groups if g.id == args.group), None)
        if group is None:
            from ..errors import UsageError
            raise UsageError(f"--group {args.group}: no such group (0..{len(result.groups) - 1})")
        print(f"\ngroup {group.id}: {group.n_slots} slots, {len(group.spaces)} spaces")
        for s in group.spaces:
            print(f"  {s}  size {group.sizes.get(s)}")
        for b in sorted({b.reason for b in group.barriers}):
            print(f"  barrier: {b}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "inspect", help="show the channel dependency groups and why any group is blocked",
        description="Analyze MODEL: every dependency group (channels that must be removed together), its "
                    "number of slots (removable units), its members and, for blocked groups, the reasons.",
        epilog="examples:\n  graphprune inspect model.onnx\n  graphprune inspect model.onnx --all --group 3\n"
               "  graphprune inspect model.onnx --json > groups.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="input model (.onnx)")
    parser.add_argument("--json", action="store_true", help="print groups, members and barriers as JSON")
    parser.add_argument("--all", action="store_true", help="list every group (default: the first 40)")
    parser.add_argument("--group", type=int, metavar="ID", help="also list the spaces of one group")
    parser.add_argument("--attention", choices=ATTENTION_MODES, default="both",
                        help="which attention groups count as prunable: both (default: whole heads and head dims), "
                             "heads or dims")
    parser.add_argument("--strict-initializer-inputs", action="store_true",
                        help="treat initializers that are also graph inputs as overridable (their groups are "
                             "blocked) instead of as weights")
    parser.set_defaults(func=_run)
