"""Distil the mirror-averaged map into the network: fine-tune a model so that the map of one
forward pass matches what the cropper serves, the mean of the maps of the image and of its
mirror (:mod:`asm.models.mirror`, two forward passes).

The teacher is the model as it is (frozen); the student starts from the same weights. Each
training photo is prepared as the cropper prepares it (its own aspect, the model's serving
preset) and flipped left-right at random; the loss is the mean squared difference of the two
maps over the teacher map's variance. BatchNorm stays frozen (:meth:`ASMNet.train`).

    python tools/distill_mirror.py --model asm/weights/asm_default.pt --pack runs/gaze-pack-768.pkl \\
        --out runs/mirror-distilled.pt [--epochs 1] [--lr 1e-4] [--batch 8] [--limit N]

``--pack``: a gaze pack (``asm train --write-pack``); only its photos are used (the training
sets of the pack, never a validation split), not their labels.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import numpy as np
import torch

from asm.data.pack import load_pack
from asm.models.mirror import mirror_mean, mirror_permutation
from asm.models.weights import Weights, WeightsMeta, asm_net, save_model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--pack", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch", type=int, default=8, help="photos per optimiser step (gradients accumulated)")
    p.add_argument("--limit", type=int, default=0, help="at most this many photos (0: all)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    weights = Weights(args.model)
    preset = weights.preset
    teacher = asm_net(weights=weights).eval()
    student = copy.deepcopy(teacher).train()
    for q in teacher.parameters():
        q.requires_grad_(False)
    perm = mirror_permutation(teacher.pattern.table)
    if perm is None:
        print("this model's pattern has no mirror: nothing to distil", file=sys.stderr)
        return 2
    images = [s.image for samples in load_pack(args.pack).values() for s in samples]
    if args.limit:
        images = [images[i] for i in rng.permutation(len(images))[: args.limit]]
    opt = torch.optim.Adam([q for q in student.parameters() if q.requires_grad], lr=args.lr)
    steps = args.epochs * len(images)
    print(f"{len(images)} photos, {args.epochs} epoch(s), {steps // args.batch} steps of {args.batch}", flush=True)
    done, running, start = 0, [], time.time()
    for epoch in range(args.epochs):
        for i in rng.permutation(len(images)):
            rgb = images[i]
            if rng.random() < 0.5:
                rgb = np.ascontiguousarray(rgb[:, ::-1])
            x = preset.network_input(rgb, rgb.shape[1], rgb.shape[0])
            with torch.no_grad():
                both = teacher(torch.from_numpy(np.concatenate([x, np.ascontiguousarray(x[..., ::-1])]))).numpy()
                target = torch.from_numpy(mirror_mean(both[:1], both[1:], perm))
            out = student(torch.from_numpy(x))
            loss = ((out - target) ** 2).mean() / target.var().clamp_min(1e-8)
            (loss / args.batch).backward()
            running.append(loss.item())
            done += 1
            if done % args.batch == 0:
                opt.step()
                opt.zero_grad()
            if done % 200 == 0 or done == steps:
                print(f"epoch {epoch + 1} photo {done}/{steps}: loss {np.mean(running):.4f} ({time.time() - start:.0f} s)",
                      flush=True)
                running = []
    meta = WeightsMeta(recipe="mirror-distilled",
                       training={**weights.meta.training, "distilled_from": str(args.model), "distill_epochs": args.epochs,
                                 "distill_lr": args.lr, "distill_batch": args.batch, "distill_photos": len(images)},
                       data=str(args.pack), val=dict(weights.meta.val))
    save_model(student.eval(), args.out, preset, half=True, meta=meta)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
