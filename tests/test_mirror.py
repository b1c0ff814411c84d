"""The mirror-averaged score map (asm.models.mirror) against its definition: a box scores on
it the mean of its own score and of its mirror's score on the mirrored image's map."""

import numpy as np
import pytest

from conftest import TEST_PRESET

from asm.cropper import Cropper
from asm.geometry import map_rows
from asm.models import ASMNet
from asm.models.mirror import mirror_mean, mirror_permutation
from asm.ops.kernel import pool_numpy
from asm.patterns import PATTERN_NAMES, get_pattern


@pytest.mark.parametrize("name", PATTERN_NAMES)
def test_the_permutation_relabels_the_mirrored_pattern(name):
    table = get_pattern(name).table
    perm = mirror_permutation(table)
    if perm is None:  # then no relabelling of the parts gives the mirrored pattern
        assert name == "multi_direction"  # its diagonal cells alternate sides: not symmetric
        return
    assert np.array_equal(table[:, ::-1], perm[table])
    assert np.array_equal(perm[perm], np.arange(len(perm)))  # mirroring twice changes nothing


def test_known_permutations_and_a_pattern_without_one():
    assert mirror_permutation(get_pattern("cross_rectangle").table).tolist() == [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10]
    assert mirror_permutation(get_pattern("grid3x1").table).tolist() == [0, 1, 2]  # rows: each its own mirror
    assert mirror_permutation(np.array([[0, 1, 1]])) is None  # part 1 would become parts 0 and 1


def _mirrored(boxes: np.ndarray, width: int) -> np.ndarray:
    return np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)


@pytest.mark.parametrize("name", ["cross_rectangle", "grid3x3", "multi_rectangle"])
@pytest.mark.parametrize("circular", [False, True])
def test_a_box_scores_the_mean_of_its_two_scores(name, circular):
    rng = np.random.default_rng(1)
    table = get_pattern(name).table
    L, h, w, W, H = int(table.max()) + 1, 12, 20, 400, 240
    maps, mirrored_maps = rng.normal(size=(2, 1, L, h, w)).astype(np.float32)
    x1, y1 = rng.uniform(0, W - 60, 50), rng.uniform(0, H - 60, 50)
    boxes = np.stack([x1, y1, x1 + rng.uniform(40, W - x1), y1 + rng.uniform(40, H - y1)], axis=1)

    def score(m, b):
        return pool_numpy(m, map_rows(b, (W, H), (w, h)), table, circular)

    mean = mirror_mean(maps, mirrored_maps, mirror_permutation(table))
    expected = 0.5 * (score(maps, boxes) + score(mirrored_maps, _mirrored(boxes, W)))
    np.testing.assert_allclose(score(mean, boxes), expected, rtol=1e-5, atol=1e-6)


def test_a_photo_and_its_mirror_score_mirrored_boxes_alike(cropper):
    rng = np.random.default_rng(2)
    img = (rng.random((300, 460, 3)) * 255).astype(np.uint8)
    img[60:200, 40:170] = (220, 60, 30)  # a subject off to one side
    boxes = np.array([[0, 0, 300, 300], [100, 20, 400, 280], [10, 50, 200, 290]], dtype=np.float64)
    a = cropper.analyse(img).score(boxes)
    b = cropper.analyse(np.ascontiguousarray(img[:, ::-1])).score(_mirrored(boxes, 460))
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
    assert np.ptp(a) > 1e-4  # the boxes differ in score by far more: the check is not one of flat maps


def test_the_map_is_the_mean_of_two_forward_passes(cropper):
    img = (np.random.default_rng(3).random((256, 384, 3)) * 255).astype(np.uint8)
    prepared = cropper.prepare(img)
    own, flipped = cropper._forward(prepared.input), cropper._forward(np.ascontiguousarray(prepared.input[..., ::-1]))
    np.testing.assert_array_equal(cropper.score_maps([prepared])[0], mirror_mean(own, flipped, cropper.mirror))
    assert not np.allclose(own, flipped[..., ::-1][:, cropper.mirror], atol=1e-3)  # the network alone is not symmetric


def test_a_pattern_without_a_mirror_gets_the_network_map_alone():
    model = ASMNet("mobilenet_v3_small", pattern="multi_direction")
    c = Cropper(model, TEST_PRESET)
    assert c.mirror is None
    prepared = c.prepare((np.random.default_rng(4).random((200, 300, 3)) * 255).astype(np.uint8))
    np.testing.assert_array_equal(c.score_maps([prepared])[0], c._forward(prepared.input))


def test_distilling_brings_one_pass_closer_to_the_mirror_average(tmp_path, model_path):
    """tools/distill_mirror.py on a tiny pack: the student's single map moves towards the
    teacher's mirror-averaged map, and the file it writes loads as a model."""
    import importlib.util
    from pathlib import Path

    import torch

    from asm.data.gaze import GazeSample
    from asm.data.pack import save_pack
    from asm.models.weights import Weights, asm_net

    spec = importlib.util.spec_from_file_location("distill_mirror", Path(__file__).resolve().parents[1] / "tools" / "distill_mirror.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    rng = np.random.default_rng(5)
    photos = [(rng.random((240, 320, 3)) * 255).astype(np.uint8) for _ in range(4)]
    for p in photos:
        p[40:160, 20:140] = (230, 80, 40)  # a subject on the left: the map is not symmetric
    save_pack({"train": [GazeSample(p, np.full((30, 40), 1 / 1200, np.float32), np.full((30, 40), 1 / 1200, np.float32), f"p{i}")
                         for i, p in enumerate(photos)]}, tmp_path / "pack.pkl")
    out = tmp_path / "student.pt"
    assert tool.main(["--model", str(model_path), "--pack", str(tmp_path / "pack.pkl"), "--out", str(out),
                      "--epochs", "3", "--batch", "2", "--lr", "1e-3"]) == 0

    def gap(model):  # the single map's distance from the teacher's mirror average, on the pack's photos
        teacher = asm_net(weights=Weights(model_path)).eval()
        preset, perm = Weights(model_path).preset, mirror_permutation(teacher.pattern.table)
        total = 0.0
        with torch.no_grad():
            for p in photos:
                x = preset.network_input(p, p.shape[1], p.shape[0])
                both = teacher(torch.from_numpy(np.concatenate([x, np.ascontiguousarray(x[..., ::-1])]))).numpy()
                total += float(((model(torch.from_numpy(x)).numpy() - mirror_mean(both[:1], both[1:], perm)) ** 2).mean())
        return total

    assert gap(asm_net(weights=Weights(out)).eval()) < 0.8 * gap(asm_net(weights=Weights(model_path)).eval())
    assert Weights(out).meta.recipe == "mirror-distilled"
