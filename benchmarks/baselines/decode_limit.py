"""The "decode-only limit": libjpeg-turbo's own decode rate on the benchmark's JPEGs.

A loader can never beat decoding every image in full, so its images/s divided by
(single-thread decode rate x threads) says how much of the machine the rest of the pipeline
(reading, transforms, batching, Python) costs. The decoder is libturbojpeg itself, called
through ctypes (TurboJPEG 2.x API, also exported by 3.x) with the default accurate DCT into
interleaved RGB, files already in memory: no loader, no Python per pixel. ctypes releases
the GIL during each call, so the multi-thread rate is measured too, for reference.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from pathlib import Path

TJPF_RGB = 0


def load_turbojpeg() -> ctypes.CDLL:
    """Opens libturbojpeg (raises OSError with the package to install when it is missing)."""
    for name in ("libturbojpeg.so.0", ctypes.util.find_library("turbojpeg"), "libturbojpeg.dylib"):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        raise OSError("libturbojpeg not found (Debian/Ubuntu: apt-get install libturbojpeg0)")
    lib.tjInitDecompress.restype = ctypes.c_void_p
    lib.tjDecompressHeader3.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong] + [
        ctypes.POINTER(ctypes.c_int)
    ] * 4
    lib.tjDecompress2.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
    ]
    lib.tjDestroy.argtypes = [ctypes.c_void_p]
    lib.tjGetErrorStr2.restype = ctypes.c_char_p
    lib.tjGetErrorStr2.argtypes = [ctypes.c_void_p]
    return lib


class TurboDecoder:
    """One TurboJPEG handle and a reusable output buffer (one per thread)."""

    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib
        self.handle = lib.tjInitDecompress()
        self.buffer = ctypes.create_string_buffer(1)

    def decode(self, data: bytes) -> tuple[int, int]:
        """Decodes ``data`` to RGB into the reused buffer; returns (width, height)."""
        w, h, sub, cs = (ctypes.c_int() for _ in range(4))
        lib = self.lib
        if (
            lib.tjDecompressHeader3(
                self.handle,
                data,
                len(data),
                ctypes.byref(w),
                ctypes.byref(h),
                ctypes.byref(sub),
                ctypes.byref(cs),
            )
            != 0
        ):
            raise ValueError(lib.tjGetErrorStr2(self.handle).decode())
        needed = w.value * h.value * 3
        if len(self.buffer) < needed:
            self.buffer = ctypes.create_string_buffer(needed)
        if (
            lib.tjDecompress2(
                self.handle, data, len(data), self.buffer, w.value, 0, h.value, TJPF_RGB, 0
            )
            != 0
        ):
            raise ValueError(lib.tjGetErrorStr2(self.handle).decode())
        return w.value, h.value

    def close(self) -> None:
        if self.handle:
            self.lib.tjDestroy(self.handle)
            self.handle = None


def _decode_for(
    lib,
    blobs: list[bytes],
    seconds: float,
    start_index: int,
    counts: list,
    cpu_seconds: list,
    slot: int,
):
    decoder = TurboDecoder(lib)
    try:
        done, i = 0, start_index
        cpu_start = time.thread_time()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            decoder.decode(blobs[i % len(blobs)])
            i += 1
            done += 1
        counts[slot] = done
        cpu_seconds[slot] = time.thread_time() - cpu_start
    finally:
        decoder.close()


def measure(image_paths: list[str], seconds: float, threads: int) -> dict:
    """Measures single-thread and ``threads``-thread full decode rates on the given JPEGs.

    Args:
        image_paths: JPEG files (read into memory first).
        seconds: Time spent in each of the two measurements.
        threads: Loader threads the limit is computed for.

    Returns:
        ``single_thread_ips`` (wall time), ``single_thread_cpu_ips`` (per second of the thread's
        CPU time: the rate of an idle core), ``measured_threads_ips``, ``limit_ips``
        (single-thread wall-time rate x threads, the definition used for the ratios: measured
        under the same load as the loaders next to it), ``ms_per_image`` and ``threads``.
    """
    lib = load_turbojpeg()
    blobs = [Path(p).read_bytes() for p in image_paths]
    warm = TurboDecoder(lib)
    for blob in blobs[: min(len(blobs), 20)]:
        warm.decode(blob)
    warm.close()

    counts, cpu = [0], [0.0]
    start = time.perf_counter()
    _decode_for(lib, blobs, seconds, 0, counts, cpu, 0)
    single = counts[0] / (time.perf_counter() - start)
    single_cpu = counts[0] / cpu[0] if cpu[0] > 0 else 0.0

    counts, cpu = [0] * threads, [0.0] * threads
    workers = [
        threading.Thread(
            target=_decode_for,
            args=(lib, blobs, seconds, k * len(blobs) // threads, counts, cpu, k),
        )
        for k in range(threads)
    ]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    together = sum(counts) / (time.perf_counter() - start)
    return {
        "single_thread_ips": single,
        "measured_threads_ips": together,
        "single_thread_cpu_ips": single_cpu,
        "limit_ips": single * threads,
        "ms_per_image": 1000.0 / single,
        "threads": threads,
        "decoder": "libturbojpeg (ctypes, accurate DCT, RGB)",
    }
