"""Runs one measurement in this fresh process and prints it as a ``RESULT {json}`` line.

bench_loader.py starts one of these per (peer, dataset, pipeline) with the interpreter of the
peer's venv, so import costs, caches and peak RSS never leak from one measurement into another.

    python benchmarks/baselines/run_one.py --peer torch --dataset detection --pipeline det512 \
        --root benchmarks/data/voc-1000 --workers 2 --batch-size 32 --seconds 15
    python benchmarks/baselines/run_one.py --peer decode --root ... --workers 2 --seconds 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Unavailable, run_loader  # noqa: E402

PEERS = {
    "conveyor": "conveyor_loader",
    "torch": "torch_loader",
    "dali": "dali_cpu",
    "spdl": "spdl_cpu",
}


def measure_decode_limit(args) -> dict:
    import decode_limit

    voc = Path(args.root) / "VOCdevkit" / "VOC2012"
    ids = (voc / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    paths = [str(voc / "JPEGImages" / f"{i}.jpg") for i in ids]
    return decode_limit.measure(paths, args.seconds, args.workers)


def measure_loader(args) -> dict:
    module = __import__(PEERS[args.peer])
    # Import the peer's libraries (torch, PIL, DALI, conveyor) before the clock starts: every
    # peer pays that once per process, and it is not the loader's cost.
    try:
        versions = module.describe()
    except Unavailable:
        raise
    except Exception as exc:
        raise Unavailable(f"{args.peer} does not import here: {exc}") from exc
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_loader(
            lambda: module.make_loader(
                args.dataset, args.pipeline, args.root, args.workers, args.batch_size, args.seed
            ),
            module.batch_images,
            args.seconds,
            loader_info=getattr(module, "loader_info", None),
        )
    messages = []
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in messages:
            messages.append(text)
    result["warnings"] = messages
    result["versions"] = versions
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", required=True, choices=sorted(PEERS) + ["decode"])
    parser.add_argument("--dataset", default="detection", choices=["detection", "segmentation"])
    parser.add_argument("--pipeline", default="det512", choices=["det512", "rrc224"])
    parser.add_argument("--root", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.peer == "decode":
            result = {"status": "ok", **measure_decode_limit(args)}
        else:
            result = {"status": "ok", **measure_loader(args)}
    except Unavailable as exc:
        result = {"status": "not available", "reason": str(exc)}
    except Exception as exc:  # a real failure: keep the message and the place it came from
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
        result = {"status": "failed", "reason": f"{type(exc).__name__}: {exc} (at {where})"}
        traceback.print_exc()
    result["python"] = sys.executable
    result["pid"] = os.getpid()
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
