"""VOC XML parsing: conveyor's native reader side by side with ElementTree/torchvision and lxml.

Three scenarios, each on the same bytes (in memory, so only parsing is timed) or files:

1. compat dict: ``torchvision.datasets.VOCDetection.parse_voc_xml(ET.fromstring(data))`` vs
   ``conveyor.voc.parse_voc_xml(data)`` (target: >= 8x).
2. typed arrays: an lxml loop that builds the struct of arrays a detection loader needs (float32
   boxes, int64 labels, difficult, offsets) vs ``conveyor.voc.parse_annotations(documents)``
   (native threads), and vs a per-document ``parse_annotation`` loop (target: >= 50x for the
   batch).
3. indexing a 17,000-file Annotations tree from disk: ``load_annotations(paths)`` vs an
   ``ET.parse`` + torchvision dict loop over the same files (what indexing with torchvision costs).

Run under nice (the machine is shared): ``nice -n 5 python benchmarks/bench_voc_parse.py``.
Writes benchmarks/results/bench_voc_parse.json and .png.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from source_tree import SOURCE_TREE  # noqa: E402, F401  (this checkout's build first)

sys.path.insert(0, str(ROOT / "benchmarks"))

from conveyor import voc  # noqa: E402
from conveyor.datasets import synthetic  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TREE = ROOT / "benchmarks" / "data" / "voc_parse_17000"


def generate_documents(count: int, seed: int = 0) -> list[bytes]:
    """VOC2012-like annotations (1-6 objects, the layout VOC's own files have)."""
    rng = np.random.default_rng(seed)
    documents = []
    for i in range(count):
        objects = []
        for _ in range(int(rng.integers(1, 7))):
            label = int(rng.integers(1, 21))
            x0, y0 = int(rng.integers(1, 300)), int(rng.integers(1, 200))
            objects.append(
                {
                    "name": voc.VOC_CLASSES[label - 1],
                    "pose": "Unspecified",
                    "truncated": int(rng.integers(0, 2)),
                    "difficult": int(rng.random() < 0.1),
                    "box": (
                        x0,
                        y0,
                        x0 + int(rng.integers(10, 200)),
                        y0 + int(rng.integers(10, 170)),
                    ),
                }
            )
        documents.append(
            synthetic._annotation_xml("2012", f"2012_{i:06d}", 500, 375, objects).encode()
        )
    return documents


def best_time(function, repeat: int) -> tuple[float, float]:
    """Best of `repeat` runs: (wall seconds, CPU seconds of the process, all threads). The best
    run is the least disturbed by other work on the (shared) machine; CPU time is what the work
    itself costs, whatever else runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        gc.collect()
        start, start_cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return min(walls), min(cpus)


def torchvision_dicts(documents):
    from torchvision.datasets import VOCDetection

    return [VOCDetection.parse_voc_xml(ET.fromstring(d)) for d in documents]


def lxml_arrays(documents):
    """What a careful user writes with lxml to get the arrays a detection loader needs."""
    from lxml import etree

    index = {name: i + 1 for i, name in enumerate(voc.VOC_CLASSES)}
    boxes, labels, difficult, offsets = [], [], [], [0]
    for data in documents:
        root = etree.fromstring(data)
        for obj in root.iter("object"):
            box = obj.find("bndbox")
            boxes.append([float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
            labels.append(index[obj.findtext("name").strip()])
            difficult.append(int(obj.findtext("difficult") or 0) != 0)
        offsets.append(len(labels))
    return (
        np.array(boxes, dtype=np.float32).reshape(-1, 4),
        np.array(labels, dtype=np.int64),
        np.array(difficult, dtype=bool),
        np.array(offsets, dtype=np.int64),
    )


def write_tree(count: int) -> list[Path]:
    folder = TREE / "Annotations"
    paths = [folder / f"2012_{i:06d}.xml" for i in range(count)]
    if folder.is_dir() and len(list(folder.glob("*.xml"))) == count:
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    for path, document in zip(paths, generate_documents(count, seed=1)):
        path.write_bytes(document)
    return paths


def torchvision_index(paths):
    from torchvision.datasets import VOCDetection

    return [VOCDetection.parse_voc_xml(ET.parse(p).getroot()) for p in paths]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--files", type=int, default=17000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS / "bench_voc_parse.json")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    documents = generate_documents(args.documents)
    mean_bytes = sum(map(len, documents)) / len(documents)
    # Sanity: both sides produce the same results before anything is timed.
    assert [voc.parse_voc_xml(d) for d in documents[:200]] == torchvision_dicts(documents[:200])
    reference = lxml_arrays(documents)
    batch = voc.parse_annotations(documents)
    for got, expected in zip(
        (batch.boxes, batch.labels, batch.difficult, batch.offsets), reference
    ):
        np.testing.assert_array_equal(got, expected)

    rows = []

    def add(scenario, label, times, count, baseline=None):
        seconds, cpu_seconds = times
        row = {
            "scenario": scenario,
            "label": label,
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "us_per_document": seconds / count * 1e6,
            "cpu_us_per_document": cpu_seconds / count * 1e6,
            "documents_per_s": count / seconds,
        }
        if baseline is not None:
            row["speedup_vs_baseline"] = baseline[0] / seconds  # wall clock, as a user waits
            row["cpu_speedup_vs_baseline"] = baseline[1] / cpu_seconds  # work per core
        rows.append(row)
        print(
            f"{scenario:>6} | {label:<52} {row['us_per_document']:8.2f} us/doc wall "
            f"{row['cpu_us_per_document']:8.2f} us/doc cpu"
            + (
                f"  x{row['speedup_vs_baseline']:.1f} wall  x{row['cpu_speedup_vs_baseline']:.1f}"
                " cpu"
                if baseline
                else ""
            ),
            flush=True,
        )
        return times

    n = len(documents)
    base = add(
        "dict",
        "torchvision parse_voc_xml(ET.fromstring)",
        best_time(lambda: torchvision_dicts(documents), args.repeat),
        n,
    )
    add(
        "dict",
        "conveyor parse_voc_xml",
        best_time(lambda: [voc.parse_voc_xml(d) for d in documents], args.repeat),
        n,
        base,
    )

    base = add(
        "typed",
        "lxml loop -> boxes/labels/difficult arrays",
        best_time(lambda: lxml_arrays(documents), args.repeat),
        n,
    )
    add(
        "typed",
        "conveyor parse_annotations (batch, native threads)",
        best_time(lambda: voc.parse_annotations(documents), args.repeat),
        n,
        base,
    )
    add(
        "typed",
        "conveyor parse_annotations (batch, 1 thread)",
        best_time(lambda: voc.parse_annotations(documents, num_threads=1), args.repeat),
        n,
        base,
    )
    add(
        "typed",
        "conveyor parse_annotation loop (per document)",
        best_time(lambda: [voc.parse_annotation(d) for d in documents], args.repeat),
        n,
        base,
    )

    paths = write_tree(args.files)
    voc.load_annotations(paths)  # warm the page cache for both sides
    base = add(
        "index",
        f"ET.parse + torchvision dict over {len(paths)} files",
        best_time(lambda: torchvision_index(paths), 1),
        len(paths),
    )
    add(
        "index",
        f"conveyor load_annotations over {len(paths)} files",
        best_time(lambda: voc.load_annotations(paths), args.repeat),
        len(paths),
        base,
    )

    ratios = {
        "dict_vs_torchvision": rows[1]["speedup_vs_baseline"],
        "dict_vs_torchvision_cpu": rows[1]["cpu_speedup_vs_baseline"],
        "typed_batch_vs_lxml": rows[3]["speedup_vs_baseline"],
        "typed_batch_1_thread_vs_lxml": rows[4]["speedup_vs_baseline"],
        "typed_batch_1_thread_vs_lxml_cpu": rows[4]["cpu_speedup_vs_baseline"],
        "typed_per_document_vs_lxml": rows[5]["speedup_vs_baseline"],
        "load_annotations_vs_torchvision": rows[7]["speedup_vs_baseline"],
        "load_annotations_seconds": rows[7]["seconds"],
    }
    report = {
        "benchmark": "bench_voc_parse",
        "command": " ".join(["python"] + sys.argv),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "nice": os.nice(0),
            # 1/5/15-minute load averages: above the core count, other work shared
            # the cores and wall-clock ratios (threads especially) suffer.
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "documents": n,
        "mean_document_bytes": mean_bytes,
        "files": len(paths),
        "results": rows,
        "ratios": ratios,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(ratios, indent=2))
    try:
        from plot import plot_results

        plot_rows = [
            {"label": f"{r['scenario']}: {r['label']}", "value": r["documents_per_s"]} for r in rows
        ]
        plot_results(
            plot_rows,
            args.output.with_suffix(".png"),
            value_key="value",
            title="VOC annotation parsing (documents/s, higher is better)",
            ylabel="documents / s",
        )
    except ImportError as error:  # matplotlib missing: the JSON is the result
        print(f"no plot ({error})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
