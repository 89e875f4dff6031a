"""Every benchmark, one after the other, then a summary of their headline figures:
python -m explorer.bench [training|flops|losses|surfaces|live ...]

Each part measures its contenders side by side in one process and prints ratios; run one part
alone with `python -m explorer.bench.<part> --help` for its options."""

import importlib
import sys

PARTS = ("training", "flops", "losses", "surfaces", "live")


def main(argv=None) -> None:
    chosen = (argv if argv is not None else sys.argv[1:]) or list(PARTS)
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        raise SystemExit(f"unknown part {unknown}; choose from {', '.join(PARTS)}")
    headlines = []
    for part in chosen:
        print(f"\n== {part} ==", flush=True)
        headlines += [(part, what, value) for what, value in importlib.import_module(f"explorer.bench.{part}").main([])]
    print("\n== summary ==")
    width = max((len(what) for _, what, _ in headlines), default=0)
    for part, what, value in headlines:
        print(f"{part:9s} {what:{width}s}  {value}")


if __name__ == "__main__":
    main()
