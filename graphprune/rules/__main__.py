"""``python -m graphprune.rules --markdown``: print the table of supported ops (from the registry);
``--update FILE``: rewrite the generated table inside FILE (docs/ops.md)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .catalog import ops_markdown, with_op_table


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m graphprune.rules", description=__doc__)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--markdown", action="store_true", help="print the op table as Markdown")
    what.add_argument("--update", type=Path, metavar="FILE", help="rewrite the op table between the markers of FILE")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.markdown:
        sys.stdout.write(ops_markdown())
        return 0
    text = args.update.read_text(encoding="utf-8")
    updated = with_op_table(text)
    if updated != text:
        args.update.write_text(updated, encoding="utf-8")
    sys.stdout.write(f"{args.update}: {'updated' if updated != text else 'already up to date'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
