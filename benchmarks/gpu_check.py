"""A short device check: CAM throughput and a small end-to-end explain() on a GPU (or any device).

Prints, side by side on the same images: forward-only img/s (``inference_mode``), GradCAM img/s in
float32 and with bf16/fp16 autocast (with the largest normalised-map difference from float32), then
one ``explain()`` with ``offline:faithfulness`` on the same photos (img/s, and its ratio to
``compute_cams``). Checks that maps, predictions and confidences come back to the host as numpy.

    python benchmarks/gpu_check.py                  # CUDA (fails clearly without a GPU)
    python benchmarks/gpu_check.py --device cpu --n 32 --batches 8
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time

import numpy as np
import skimage.data as sd
import torch
from PIL import Image

import vlmxplain as vx
from vlmxplain.masks.saliency import saliency

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "hubble_deep_field", "immunohistochemistry",
          "retina")


def photos(n: int) -> list[Image.Image]:
    base = [Image.fromarray(getattr(sd, name)()).convert("RGB").resize((500, 375)) for name in PHOTOS]
    return [base[k % len(base)].rotate(7 * (k // len(base))) for k in range(n)]


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
    args = parser.parse_args()
    clf = vx.load_classifier("efficientnet_lite0", device=args.device)
    device = clf.device
    images = photos(args.n)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"device: {device} ({name}); torch {torch.__version__}; {args.n} photos 500×375, EfficientNet-Lite0")
    print(f"{'batch':>5} {'forward img/s':>14} {'gradcam fp32':>13} {'bf16':>8} {'fp16':>8} {'max Δmap bf16/fp16':>20}")
    for batch in args.batches:
        x = clf.batch(images[:batch])

        def forward() -> None:
            with torch.inference_mode():
                for start in range(0, args.n, batch):
                    clf.model(x)

        fwd = rate(forward, args.n, device)
        ref = vx.compute_cams(clf, images, batch_size=batch)
        assert isinstance(ref.maps, np.ndarray) and isinstance(ref.confidences, np.ndarray)
        row, deltas = [], []
        for precision in (None, "bf16", "fp16"):
            try:
                row.append(rate(lambda: vx.compute_cams(clf, images, batch_size=batch, autocast=precision), args.n,
                                device))
            except RuntimeError as exc:  # a precision the device does not support
                row.append(float("nan"))
                print(f"  {precision}: {exc}")
                continue
            if precision:
                res = vx.compute_cams(clf, images[:32], batch_size=batch, autocast=precision)
                deltas.append(max(float(np.abs(saliency(res.maps[k], (224, 224)) - saliency(ref.maps[k], (224, 224)))
                                        .max()) for k in range(len(res))))
        print(f"{batch:>5} {fwd:>14.1f} {row[0]:>13.1f} {row[1]:>8.1f} {row[2]:>8.1f} "
              f"{' / '.join(f'{d:.3f}' for d in deltas):>20}")

    cams_rate = rate(lambda: vx.compute_cams(clf, images, batch_size=16), args.n, device, repeats=1)
    with tempfile.TemporaryDirectory() as tmp:
        data = vx.datasets.from_list(images)
        t0 = time.perf_counter()
        run = vx.explain(clf, data, judge="offline:faithfulness", run_dir=f"{tmp}/run", cache=False, batch_size=16,
                         progress=False, verbose=False)
        seconds = time.perf_counter() - t0
    ok = int((run.table["judge_status"] == "ok").sum())
    print(f"explain(offline:faithfulness): {args.n / seconds:.1f} img/s ({ok}/{args.n} judged); "
          f"÷ compute_cams {cams_rate:.1f} img/s = {args.n / seconds / cams_rate:.2f}")


if __name__ == "__main__":
    main()
