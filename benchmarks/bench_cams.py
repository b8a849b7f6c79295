"""CAM throughput, side by side on the same batch (EfficientNet-Lite0, 224×224 photos, CPU).

Prints img/s for:
  floor   — the minimum work a gradient CAM needs: one forward pass (no graph up to the target
            layer) and the gradient of the target logits with respect to that layer's output (no CAM
            arithmetic, no preprocessing);
  ours    — vx.compute_cams(..., method="gradcam"), end to end from PIL images (preprocessing,
            prediction, CAM, hooks released);
  readme  — pytorch-grad-cam used as its README shows, on the model as timm builds it (GradCAM(model, target_layers) then
            cam(input_tensor, targets) with the targets given), on the already preprocessed batch, parameters
            requiring grad as they do after loading.
Targets (issue "Foundation"): ours/floor >= 0.9, ours/readme >= 3.5.

    python benchmarks/bench_cams.py [--batch 16] [--repeats 5]
"""
from __future__ import annotations

import argparse
import copy
import platform
import time

import torch
from PIL import Image
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

import vlmxplain as vx
from vlmxplain.cams.extract import LayerCapture


def best_rate(fn, n_images: int, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n_images / min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    clf = vx.load_classifier("efficientnet_lite0")
    gallery = vx.datasets.gallery()
    photos = [gallery[i % len(gallery)].image.resize((224, 224), Image.BICUBIC) for i in range(args.batch)]
    x = clf.batch(photos)
    model, layer = clf.model, clf.target_layer

    def floor():
        capture = LayerCapture(gradient_leaf=True)
        hook = layer.register_forward_hook(capture, prepend=True)
        try:
            with torch.no_grad():
                logits = model(x)
                torch.autograd.grad(logits.gather(1, logits.argmax(1, keepdim=True)).sum(), capture.output)
        finally:
            hook.remove()

    def ours():
        vx.compute_cams(clf, photos, method="gradcam", batch_size=args.batch)

    # The README user: the model as timm builds it (default memory format, every parameter
    # requiring grad), explicit targets computed once outside the timing.
    user_model = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    user_layer = user_model.get_submodule(clf.target_layer_name)
    user_x = x.contiguous()
    with torch.no_grad():
        targets = [ClassifierOutputTarget(int(p)) for p in user_model(user_x).argmax(1)]

    def readme():
        with GradCAM(model=user_model, target_layers=[user_layer]) as cam:
            cam(input_tensor=user_x, targets=targets)

    rates = {name: best_rate(fn, args.batch, args.repeats) for name, fn in
             (("floor", floor), ("ours", ours), ("readme", readme))}
    model.zero_grad(set_to_none=True)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, batch {args.batch}")
    for name, rate in rates.items():
        print(f"  {name:7s} {rate:7.1f} img/s")
    print(f"ours / floor  = {rates['ours'] / rates['floor']:.2f}   (target >= 0.9)")
    print(f"ours / readme = {rates['ours'] / rates['readme']:.2f}   (target >= 3.5)")


if __name__ == "__main__":
    main()
