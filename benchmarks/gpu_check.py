"""A short device check: CAM throughput and a small end-to-end explain() on a GPU (or any device).

Prints, side by side on the same images (the offline gallery's photos, rotated): forward-only img/s
(``inference_mode``), GradCAM img/s in float32 and with bf16/fp16 autocast, with the largest
normalised-map difference from float32 for the same class explained and how many top classes the
lower precision flipped; the same maps computed by a fresh copy on the CPU beside them
(predictions, maps and confidences must agree: no host/device mistake); then one ``explain()``
with ``offline:faithfulness`` on the same photos (img/s, and its ratio to ``compute_cams``). Checks
that maps, predictions and confidences come back to the host as numpy.

    python benchmarks/gpu_check.py                  # CUDA (fails clearly without a GPU)
    python benchmarks/gpu_check.py --device cpu --n 32 --batches 8

The tests run it on the CPU (``--n 8 --batches 4 --repeats 1``), so it cannot rot between the
rare sessions that have a GPU.
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time

import numpy as np
import torch
from PIL import Image

import vlmxplain as vx
from vlmxplain.cams import CamResult
from vlmxplain.masks.saliency import saliency


def photos(n: int) -> list[Image.Image]:
    """``n`` distinct 500×375 photos: the offline gallery's (shipped in installed packages), rotated."""
    gallery = vx.datasets.gallery()
    base = [gallery[i].image.convert("RGB").resize((500, 375)) for i in range(len(gallery))]
    return [base[k % len(base)].rotate(7 * (k // len(base))) for k in range(n)]


def max_map_difference(a: CamResult, b: CamResult) -> float:
    """The largest difference between two results' normalised maps (at 224×224)."""
    return max(float(np.abs(saliency(a.maps[k], (224, 224)) - saliency(b.maps[k], (224, 224))).max())
               for k in range(len(a)))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def rate(fn, n: int, device: torch.device, repeats: int = 3) -> float:
    fn()
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--repeats", type=int, default=3, help="timings per figure (the best is kept)")
    args = parser.parse_args()
    clf = vx.load_classifier("efficientnet_lite0", device=args.device)
    device = clf.device
    images = photos(args.n)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"device: {device} ({name}); torch {torch.__version__}; {args.n} photos 500×375, EfficientNet-Lite0")
    print(f"{'batch':>5} {'forward img/s':>14} {'gradcam fp32':>13} {'bf16':>8} {'fp16':>8} "
          f"{'max Δmap bf16/fp16':>20} {'top class flips':>14}")
    for batch in args.batches:
        x = clf.batch(images[:batch])

        def forward() -> None:
            with torch.inference_mode():
                for start in range(0, args.n, batch):
                    clf.model(x)

        fwd = rate(forward, args.n, device, args.repeats)
        ref = vx.compute_cams(clf, images, batch_size=batch)
        assert isinstance(ref.maps, np.ndarray) and isinstance(ref.confidences, np.ndarray)
        row, deltas, flips = [], [], []
        for precision in (None, "bf16", "fp16"):
            try:
                row.append(rate(lambda: vx.compute_cams(clf, images, batch_size=batch, autocast=precision), args.n,
                                device, args.repeats))
            except RuntimeError as exc:  # a precision the device does not support
                row.append(float("nan"))
                print(f"  {precision}: {exc}")
                continue
            if precision:  # the same class explained (a near tie may flip the top class: counted apart)
                mixed = vx.compute_cams(clf, images[:32], batch_size=batch, autocast=precision,
                                        targets=[int(t) for t in ref.predictions[:32]])
                deltas.append(max_map_difference(mixed, ref))
                flips.append(int((vx.compute_cams(clf, images[:32], batch_size=batch, autocast=precision).predictions
                                  != ref.predictions[:32]).sum()))
        print(f"{batch:>5} {fwd:>14.1f} {row[0]:>13.1f} {row[1]:>8.1f} {row[2]:>8.1f} "
              f"{' / '.join(f'{d:.3f}' for d in deltas):>20} {' / '.join(map(str, flips)):>14}")

    # the same maps as a fresh copy on the CPU computes: no host/device mistake anywhere
    cpu = vx.compute_cams(vx.load_classifier("efficientnet_lite0", device="cpu"), images[:16], batch_size=16)
    here = vx.compute_cams(clf, images[:16], batch_size=16)
    same = float(np.mean(cpu.predictions == here.predictions))
    dconf = float(np.abs(cpu.confidences - here.confidences).max())
    print(f"{device} vs a fresh copy on the cpu, float32, {len(here)} photos: predictions agree {same:.0%}; "
          f"max Δmap {max_map_difference(here, cpu):.4f}; max Δconfidence {dconf:.2e}")

    cams_rate = rate(lambda: vx.compute_cams(clf, images, batch_size=16), args.n, device, repeats=1)
    with tempfile.TemporaryDirectory() as tmp:
        data = vx.datasets.from_list([(im, "") for im in images], classes="imagenet")
        t0 = time.perf_counter()
        run = vx.explain(clf, data, judge="offline:faithfulness", run_dir=f"{tmp}/run", cache=False, batch_size=16,
                         progress=False, verbose=False)
        seconds = time.perf_counter() - t0
        ok = int((run.table["judge_status"] == "ok").sum())
    print(f"explain(offline:faithfulness): {args.n / seconds:.1f} img/s ({ok}/{args.n} judged); "
          f"÷ compute_cams {cams_rate:.1f} img/s = {args.n / seconds / cams_rate:.2f}")


if __name__ == "__main__":
    main()
