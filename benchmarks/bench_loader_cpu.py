"""CPU time per image of conveyor.DataLoader vs the decode-only limit, on a shared machine.

bench_loader.py reports wall-clock images/s, which other jobs on a shared 2-core machine
distort by 2x and more. This measures CPU seconds instead, side by side in one process on the
same files: the baseline is bench_loader's decode-only limit (libturbojpeg's tjDecompress2 via
ctypes, accurate DCT, RGB, files already in memory, one thread; ``baselines/decode_limit.py``);
conveyor runs bench_loader's conveyor peer (``baselines/conveyor_loader.py``: VOCDetection +
torchvision v2 transforms translated natively + detection_collate, 2 native threads) and is
charged the whole process's CPU time (workers, consumer loop, Python) per delivered image.
``cpu_ratio`` = decode CPU per image / loader CPU per image: the loader's images/s as a fraction
of the decode limit on idle cores (bench_loader's ratio on a quiet machine is at most this).
Rounds alternate baseline and loader; medians are reported. Writes JSON and a PNG::

    nice .venv/bin/python benchmarks/bench_loader_cpu.py --pipelines rrc224 det512
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# conveyor from --conveyor-tree (e.g. an older build, to compare), else this source tree when
# its extension is built (`make inplace`), else the installed package.
_tree = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--conveyor-tree=")), None)
if _tree or any((REPO / "python" / "conveyor").glob("_core*")):
    sys.path.insert(0, _tree or str(REPO / "python"))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "baselines"))

import conveyor_loader  # noqa: E402
import decode_limit  # noqa: E402
from voc_tree import ensure_tree  # noqa: E402


def decode_cpu_per_image(decoder, files: list) -> float:
    start = time.thread_time()
    for data in files:
        decoder.decode(data)
    return (time.thread_time() - start) / len(files)


def loader_cpu_per_image(pipeline: str, root: str, images: int, workers: int, seed: int) -> float:
    loader = conveyor_loader.make_loader("detection", pipeline, root, workers, 32, seed)
    iterator = iter(loader)
    next(iterator)  # start-up (threads, first batch) is not the steady state
    start, count = time.process_time(), 0
    for batch, _ in iterator:
        count += batch.shape[0]
        if count >= images:
            break
    elapsed = time.process_time() - start
    del iterator
    return elapsed / count


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", nargs="+", default=["rrc224", "det512"], choices=["rrc224", "det512"])
    parser.add_argument("--tree-images", type=int, default=1000, help="images in the generated VOC tree")
    parser.add_argument("--images", type=int, default=640, help="images timed per loader round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=HERE / "data")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "loader_cpu.json")
    parser.add_argument("--conveyor-tree", help="=PATH: the python/ folder of the conveyor to measure")
    args = parser.parse_args(argv)
    import conveyor

    tree = ensure_tree(args.data_dir / f"voc-{args.tree_images}", args.tree_images)
    root = str(tree["root"])
    voc = Path(root) / "VOCdevkit" / "VOC2012"
    ids = (voc / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    files = [(voc / "JPEGImages" / f"{i}.jpg").read_bytes() for i in ids[:400]]
    decoder = decode_limit.TurboDecoder(decode_limit.load_turbojpeg())
    decode_cpu, loader_cpu = [], {p: [] for p in args.pipelines}
    for _ in range(args.rounds):
        for pipeline in args.pipelines:
            decode_cpu.append(decode_cpu_per_image(decoder, files))
            loader_cpu[pipeline].append(loader_cpu_per_image(pipeline, root, args.images, args.workers, 0))
    decode_ms = 1000 * statistics.median(decode_cpu)
    results = [{"label": "decode-only limit (1 thread)", "cpu_ms_per_image": decode_ms, "value": 1.0}]
    for pipeline, samples in loader_cpu.items():
        ms = 1000 * statistics.median(samples)
        results.append({"label": f"conveyor {pipeline}", "cpu_ms_per_image": ms,
                        "cpu_ratio": decode_ms / ms, "value": decode_ms / ms,
                        "rounds_cpu_ms": [1000 * s for s in samples]})
    report = {"benchmark": "loader CPU time per image vs decode-only limit",
              "baseline": "tjDecompress2 via ctypes (bench_loader's decode-only limit), same files, same process",
              "conveyor": conveyor.__file__, "tree": {k: str(v) for k, v in tree.items()},
              "workers": args.workers, "rounds": args.rounds, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    try:
        from plot import plot_results

        plot_results(results, args.out.with_suffix(".png"), value_key="value",
                     title="CPU-time ratio to the decode-only limit (higher is better)", ylabel="ratio")
    except Exception as exc:  # matplotlib missing: JSON only
        print(f"no plot: {exc}")
    for row in results:
        print(f"{row['label']:30s} {row['cpu_ms_per_image']:.3f} ms CPU/image  ratio {row['value']:.2f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
