"""Every benchmark, one after the other: python -m explorer.bench [training|losses|surfaces ...]

Each part measures its contenders side by side in one process and prints ratios; run one part
alone with `python -m explorer.bench.<part> --help` for its options."""

import importlib
import sys

PARTS = ("training", "losses", "surfaces")


def main(argv=None) -> None:
    chosen = (argv if argv is not None else sys.argv[1:]) or list(PARTS)
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        raise SystemExit(f"unknown part {unknown}; choose from {', '.join(PARTS)}")
    for part in chosen:
        print(f"\n== {part} ==", flush=True)
        importlib.import_module(f"explorer.bench.{part}").main([])


if __name__ == "__main__":
    main()
