"""asm.search.candidates.nms (numpy) keeps what torchvision.ops.nms keeps (without importing torchvision)."""

import numpy as np
import torch
from torchvision.ops import nms as torchvision_nms

from asm.search.candidates import nms


def test_same_boxes_kept_as_torchvision_and_max_keep_is_a_prefix():
    g = torch.Generator().manual_seed(0)
    for _ in range(100):
        n = int(torch.randint(1, 300, (1,), generator=g))
        xy = torch.rand(n, 2, generator=g) * 500
        boxes = torch.cat([xy, xy + 1 + torch.rand(n, 2, generator=g) * 200], 1)
        scores = torch.rand(n, generator=g)
        threshold = float(torch.rand(1, generator=g))
        want = torchvision_nms(boxes, scores, threshold)
        assert np.array_equal(nms(boxes.numpy(), scores.numpy(), threshold), want.numpy())
        k = int(torch.randint(1, 20, (1,), generator=g))
        assert np.array_equal(nms(boxes.numpy(), scores.numpy(), threshold, max_keep=k), want[:k].numpy())


def test_empty_and_degenerate_boxes():
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).size == 0
    boxes = torch.tensor([[0.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 10, 10]])  # zero-area boxes never suppress
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert nms(boxes.numpy(), scores.numpy(), 0.5).tolist() == torchvision_nms(boxes, scores, 0.5).tolist()
