"""How much memory does one ``compress`` call take, as a multiple of the model?

``compress`` deep-copies its input once and rebuilds the copy's layers in place,
so its peak should stay near one extra model plus the largest layer's working
arrays. This script measures it on torchvision's VGG-16 with BatchNorm (random
weights, eval mode, about 0.55 GB of float32 weights): each run happens in a
fresh subprocess, which reports its peak resident set size (``ru_maxrss``)
after building the model and again after ``compress(model, METHOD, KEEP)``;
the increase is printed in GB and as a multiple of the model's size.

Run from the repository root::

    python benchmarks/compress_memory.py                  # magnitude, keep 0.5
    python benchmarks/compress_memory.py --method tropnnc --keep 0.5
    python benchmarks/compress_memory.py --max-multiple 2 # fail above 2x

Measured here (2 shared cores, torch CPU): magnitude at keep 0.5 raised the
peak by 1.84x to 1.93x the model's 0.515 GB over runs (9.2x when every step
copied the model and converted whole layers to float64).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import helpers  # noqa: F401  (must precede torchvision)

ROOT = Path(__file__).resolve().parents[1]
GB = 1024**3


def peak_rss() -> int:
    """Peak resident set size of this process so far, in bytes (Linux: KiB units)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(method: str, keep: float) -> dict[str, float]:
    """In this process: peak RSS before and after compressing a fresh VGG-16-BN."""
    import torch
    from torchvision.models import vgg16_bn

    from helpers.compress import compress

    torch.manual_seed(0)
    model = vgg16_bn(weights=None).eval()
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    size += sum(b.numel() * b.element_size() for b in model.buffers())
    before = peak_rss()
    start = time.perf_counter()
    small = compress(model, method, keep)
    seconds = time.perf_counter() - start
    after = peak_rss()
    kept = sum(p.numel() for p in small.parameters()) / sum(
        p.numel() for p in model.parameters()
    )
    return {
        "model_gb": size / GB,
        "before_gb": before / GB,
        "after_gb": after / GB,
        "increase_gb": (after - before) / GB,
        "multiple": (after - before) / size,
        "kept_params": kept,
        "seconds": seconds,
    }


def run_fresh(method: str, keep: float) -> dict[str, float]:
    """Run :func:`measure` in a fresh interpreter (peak RSS never goes down)."""
    code = (
        "import json, sys; sys.path.insert(0, 'benchmarks');"
        "from compress_memory import measure;"
        f"print(json.dumps(measure({method!r}, {keep!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(f"the measuring process failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Command line: measure one method and kept fraction, print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="magnitude")
    parser.add_argument("--keep", type=float, default=0.5)
    parser.add_argument(
        "--max-multiple",
        type=float,
        default=None,
        help="exit with an error when the increase exceeds this multiple",
    )
    args = parser.parse_args()
    r = run_fresh(args.method, args.keep)
    print(
        f"vgg16_bn ({r['model_gb']:.3f} GB), compress({args.method!r}, "
        f"{args.keep:g}) in {r['seconds']:.1f} s: peak RSS {r['before_gb']:.2f} GB "
        f"-> {r['after_gb']:.2f} GB, an increase of {r['increase_gb']:.2f} GB = "
        f"{r['multiple']:.2f} x the model ({r['kept_params']:.1%} of the weights kept)"
    )
    if args.max_multiple is not None and r["multiple"] > args.max_multiple:
        sys.exit(f"the increase exceeds {args.max_multiple:g} x the model")


if __name__ == "__main__":
    main()
