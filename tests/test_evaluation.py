"""``asm eval``: GAICD / FCDB / FLMS protocols, border-free checks, peers, the CLI end to end."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from asm.cli import main
from asm.cropper import Cropper
from asm.models.weights import InferencePreset
from asm.data.cropping import FCDB, FLMS, GAICD
from asm.data.fixations import FixationItem
from asm.data.shared import shared_dir
from asm.evaluation import peers
from asm.evaluation.border import border_bias, photo_vs_cut
from asm.evaluation.cropping import best_crop_section, gaicd_section
from asm.evaluation.metrics import gaicd_evaluate, iou
from asm.evaluation.report import shown
from asm.evaluation.retention import RETENTION_ASPECTS, best_possible_kept, fixation_retention
from asm.io import load_image

ASPECT_LABELS = [a for a, _ in RETENTION_ASPECTS]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # with every core busy (CI, a training run), two OpenMP threads make each forward pass
    # ~100x slower than one
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def cropper(make_random_model):
    return Cropper(make_random_model(), InferencePreset(128, 256))


def _save_noise(path, w, h, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(path)


def _gaicd_shared():
    base = shared_dir()
    if base is None or not (base / "data" / "gaicd" / "images" / "302166.jpg").is_file():
        pytest.skip("shared GAICD image 302166.jpg not present")
    return GAICD(base / "data" / "gaicd" / "images", split="all")


# ------------------------------------------------------------------------ GAICD
def test_gaicd_section_on_the_real_image(cropper):
    ds = _gaicd_shared()
    table, res = gaicd_section(cropper, ds)
    assert "302166.jpg" in ds.available()
    asm = res["asm"]
    assert asm["images"] == len(ds.available())
    # asm's row is the cropper's scores of the annotated crops against their MOS, averaged over the images
    anns = [ds.annotation(n) for n in ds.available()]
    boxes = [a.boxes.numpy().astype(np.float64) for a in anns]
    mine = [cropper.score(load_image(a.path), b) for a, b in zip(anns, boxes)]
    mos = [a.scores.numpy() for a in anns]
    scipy_stats = pytest.importorskip("scipy.stats")
    assert asm["SRCC"] == pytest.approx(np.mean([scipy_stats.spearmanr(m, g).statistic for m, g in zip(mine, mos)]))
    by_hand = gaicd_evaluate(mine, mos)
    for k in ("Acc1/5", "Acc4/5", "Acc5", "Acc1/10", "Acc10"):
        assert asm[k] == pytest.approx(by_hand[k]), k
    # the area baseline is computed, and computed right
    expected = gaicd_evaluate([(b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) for b in boxes], mos)
    assert res["area (bigger is better)"]["SRCC"] == pytest.approx(expected["SRCC"])
    assert res["area (bigger is better)"]["Acc5"] == pytest.approx(expected["Acc5"])
    # peers that cannot score a crop get a dash
    assert res["centre crop"] is None and res["libvips attention"] is None
    row = next(r for r in table.rows if r[0] == "centre crop")
    assert row[3:] == ["–"] * 11
    md = table.markdown()
    assert f"| asm | {len(anns)} | {sum(len(b) for b in boxes)} |" in md and "area (bigger is better)" in md


# ------------------------------------------------------------------- FCDB / FLMS
@pytest.fixture()
def best_crop_fixture(tmp_path):
    sizes = {"a.jpg": (160, 120), "b.jpg": (120, 160), "c.jpg": (200, 100)}
    for i, (name, (w, h)) in enumerate(sizes.items()):
        _save_noise(tmp_path / name, w, h, i)
    fcdb = [  # the FCDB cropping format: Flickr URL + [x, y, w, h]
        {"url": "https://farm1.staticflickr.com/1/a.jpg", "crop": [10, 10, 120, 90]},
        {"url": "https://farm1.staticflickr.com/1/b.jpg", "crop": [0, 20, 120, 100]},
        {"url": "https://farm1.staticflickr.com/1/c.jpg", "crop": [50, 0, 100, 100]},
    ]
    (tmp_path / "cropping_testing_set.json").write_text(json.dumps(fcdb))
    flms = {"a.jpg": [[10, 10, 130, 100], [0, 0, 160, 120]], "b.jpg": [[0, 20, 120, 120]], "c.jpg": [[50, 0, 150, 100], [40, 0, 160, 90]]}
    (tmp_path / "flms.json").write_text(json.dumps(flms))
    return tmp_path, sizes, fcdb, flms


def test_fcdb_and_flms_sections_on_a_synthetic_fixture(cropper, best_crop_fixture):
    root, sizes, fcdb, flms = best_crop_fixture
    ds = FCDB(root, split="test", annotation_dir=root)
    assert len(ds.available()) == 3
    table, res = best_crop_section(cropper, ds, "FCDB")
    for m in ("asm (free aspect)", "asm (annotated aspect)", "whole image", "centre crop"):
        assert res[m]["images"] == 3
    # centre boxes by hand: a (4:3 of 160x120) the whole image, b (6:5 of 120x160) [0, 30, 120, 130],
    # c (1:1 of 200x100) [50, 0, 150, 100], which is c's annotated crop
    assert res["centre crop"]["IoU"] == pytest.approx((120 * 90 / (160 * 120) + 90 * 120 / 13200 + 1.0) / 3)
    assert res["centre crop"]["Disp"] == pytest.approx(((10 / 160 + 30 / 160 + 10 / 120 + 20 / 120) / 4 + (10 / 160 + 10 / 160) / 4 + 0.0) / 3)
    # asm's rows are the best crop the cropper gives, free and at the annotated aspect
    gts = {e["url"].rsplit("/", 1)[1]: [e["crop"][0], e["crop"][1], e["crop"][0] + e["crop"][2], e["crop"][1] + e["crop"][3]] for e in fcdb}
    free = {n: cropper.crop(load_image(root / n)).crops[0].box for n in sizes}
    assert res["asm (free aspect)"]["IoU"] == pytest.approx(np.mean([iou(free[n], gts[n]) for n in sizes]))
    fitted = [iou(cropper.crop(load_image(root / n), aspect=((g[2] - g[0]) / (g[3] - g[1]), 1.0)).crops[0].box, g)
              for n, g in gts.items()]
    assert res["asm (annotated aspect)"]["IoU"] == pytest.approx(np.mean(fitted))
    whole = np.mean([iou([0, 0, *sizes[e["url"].rsplit("/", 1)[1]]],
                         [e["crop"][0], e["crop"][1], e["crop"][0] + e["crop"][2], e["crop"][1] + e["crop"][3]]) for e in fcdb])
    assert res["whole image"]["IoU"] == pytest.approx(whole)
    assert "| whole image | 3 |" in table.markdown()

    ds = FLMS(root, annotations=root / "flms.json")
    _, res = best_crop_section(cropper, ds, "FLMS")
    # several annotated crops: the best IoU counts (a.jpg has the whole image among them)
    best = [max(iou([0, 0, *sizes[n]], b) for b in boxes) for n, boxes in flms.items()]
    assert res["whole image"]["IoU"] == pytest.approx(np.mean(best))
    assert res["centre crop"]["images"] == 3
    assert res["asm (free aspect)"]["IoU"] == pytest.approx(np.mean([max(iou(free[n], b) for b in flms[n]) for n in sizes]))


def test_best_crop_section_says_when_no_image_is_there(cropper, best_crop_fixture, tmp_path_factory):
    root, *_ = best_crop_fixture
    empty = tmp_path_factory.mktemp("empty")
    table, res = best_crop_section(cropper, FCDB(empty, split="test", annotation_dir=root), "FCDB")
    assert res == {} and f"no FCDB images under {shown(empty)}" in table.markdown()


# ------------------------------------------------------------------------ peers
@pytest.mark.parametrize("size", [(203, 97), (120, 300), (256, 256)])
def test_peers_return_in_bounds_boxes_of_the_right_aspect(size):
    W, H = size
    rng = np.random.default_rng(W)
    rgb = (rng.random((H, W, 3)) * 255).astype(np.uint8)
    rgb[H // 4 : H // 2, W // 2 : 3 * W // 4] = [255, 30, 30]  # something to look at
    for name, peer in peers.PEERS.items():
        ok, why = peers.available(peer)
        if not ok:
            pytest.skip(why)
        for ratio in (1.0, 9 / 16, 16 / 9, 4 / 3):
            x1, y1, x2, y2 = box = peer.place(rgb, ratio)
            assert all(isinstance(v, int) for v in box), (name, box)
            assert 0 <= x1 < x2 <= W and 0 <= y1 < y2 <= H, (name, ratio, box)
            w, h = x2 - x1, y2 - y1
            assert (w, h) == peers.largest_box(W, H, ratio)
            assert w == W or h == H  # the largest box of the aspect
            assert abs(w / h - ratio) <= max(1.0, ratio) / min(w, h), (name, ratio, box)


def test_vips_offsets_match_the_pixels_libvips_cut_out():
    pyvips = pytest.importorskip("pyvips")
    rng = np.random.default_rng(3)
    rgb = (rng.random((90, 170, 3)) * 255).astype(np.uint8)  # noise: every window is unique
    rgb[10:40, 120:160] = 255
    for interesting in ("attention", "entropy"):
        for ratio in (1.0, 9 / 16, 3.0):
            x1, y1, x2, y2 = peers.vips_crop(rgb, ratio, interesting)
            out = pyvips.Image.new_from_array(rgb).smartcrop(x2 - x1, y2 - y1, interesting=interesting)
            assert np.array_equal(np.asarray(out), rgb[y1:y2, x1:x2])


def test_centre_crop_and_smartcrop_score():
    assert peers.centre_crop(200, 100, 1.0) == [50, 0, 150, 100]
    assert peers.centre_crop(100, 200, 16 / 9) == [0, 72, 100, 128]
    pytest.importorskip("smartcrop")
    rgb = (np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8)
    s = peers.smartcrop_score(rgb, [[0, 0, 80, 60], [10, 10, 50, 50]])
    assert s.shape == (2,) and np.isfinite(s).all()


# ------------------------------------------------------- border-free checks
class _FakeFixations:
    name, split, root = "fake", "val", "synthetic"

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_fixation_retention_of_the_centre_crop_by_hand(cropper, tmp_path):
    _save_noise(tmp_path / "f.png", 200, 100, 0)
    pts = np.array([[10, 50], [60, 50], [100, 10], [149.5, 99.5], [160, 50], [150, 50]], np.float32)
    data = _FakeFixations([FixationItem(1, tmp_path / "f.png", pts, (100, 200))])
    table, res = fixation_retention(cropper, data)
    # 1:1 centre box [50, 0, 150, 100] keeps x = 60, 100, 149.5, 150 (edges count): 4 of 6
    assert res["centre crop"]["1:1"] == pytest.approx(4 / 6)
    # 9:16 centre box: w = round(100 * 9 / 16) = 56 -> [72, 0, 128, 100] keeps x = 100 only
    assert res["centre crop"]["9:16"] == pytest.approx(1 / 6)
    # best possible 1:1 box [60, 0, 160, 100] keeps 5 of 6 (10 and 160 are 150 apart)
    assert res["best possible box"]["1:1"] == pytest.approx(5 / 6)
    assert best_possible_kept(pts, 200, 100, 1.0) == pytest.approx(5 / 6)
    # centre boxes of 1:1, 4:5, 2:3, 9:16, 3:2, 16:9 are 100, 80, 67, 56, 150, 178 px wide
    assert res["centre crop"]["area"] == pytest.approx((100 + 80 + 67 + 56 + 150 + 178) / 6 / 200)
    assert res["centre crop"]["offsets"] == pytest.approx([0.0] * 6, abs=0.01)  # centred up to rounding
    # asm's rows by hand: its 1:1 crop, and the best-scored of the 1:1 largest boxes (100 x 100, every 4 px)
    x1, y1, x2, y2 = next(c.box for c in cropper.crop(load_image(tmp_path / "f.png"), aspect=ASPECT_LABELS).crops if c.aspect == "1:1")
    assert res["asm"]["1:1"] == pytest.approx(np.mean([x1 <= x <= x2 and y1 <= y <= y2 for x, y in pts]))
    x1, y1, x2, y2 = next(c.box for c in cropper.crop(load_image(tmp_path / "f.png"), aspect=ASPECT_LABELS, faces=False).crops
                          if c.aspect == "1:1")
    assert res["asm, faces off"]["1:1"] == pytest.approx(np.mean([x1 <= x <= x2 and y1 <= y <= y2 for x, y in pts]))
    assert res["asm, faces off"]["1:1"] <= res["best possible box"]["1:1"]
    assert res["faces"]["crops"] == len(ASPECT_LABELS) and res["faces"]["cut"] == 0
    # 4:5 centre box [60, 0, 140, 100] keeps x = 60 and 100
    assert "| centre crop | 1 | 0.667 | 0.333 |" in table.markdown()


def test_photo_vs_cut_and_border_bias(cropper, tmp_path):
    paths = []
    for i in range(2):
        _save_noise(tmp_path / f"p{i}.jpg", 180, 120, i)
        paths.append(tmp_path / f"p{i}.jpg")
    table, res, maps = photo_vs_cut(cropper, paths, cuts=2, seed=1)
    assert res["asm"]["pairs"] == 4
    # the share by hand: each photo's own score against its cut's (maps.cuts holds the cut boxes)
    wins = []
    for i, (x1, y1, x2, y2), _ in maps.cuts:
        rgb = load_image(paths[i])
        whole = cropper.score(rgb, [[0, 0, 180, 120]])[0]
        cut = cropper.score(np.ascontiguousarray(rgb[y1:y2, x1:x2]), [[0, 0, x2 - x1, y2 - y1]])[0]
        wins.append(1.0 if whole > cut else 0.5 if whole == cut else 0.0)
    assert len(wins) == 4 and res["asm"]["share"] == pytest.approx(np.mean(wins))
    assert res["centre crop"] is None and len(maps) == 2
    assert "share photo > cut" in table.markdown()
    table, bias = border_bias(maps)
    assert len(bias["channels"]) == cropper.model.num_partitions
    assert set(bias["rows"]) == {"photos", "re-framed cuts", "photo map over the cut regions"}
    assert bias["rows"]["re-framed cuts"]["maps"] == 4 and "| re-framed cuts | 4 |" in table.markdown()
    # a map that rises at its border has a positive bias, one that rises inside a negative one
    m = torch.zeros(1, 2, 8, 10)
    m[:, 0, 0, :] = 1.0  # channel 0 rises at the top border, channel 1 only inside
    m[:, 1, 2:-2, 2:-2] = 1.0
    _, b = border_bias([m])
    assert b["channels"][0] > 0.5 and b["channels"][1] < -0.5


# --------------------------------------------------------------------- the CLI
def test_asm_eval_end_to_end(model_path, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        _save_noise(photos / f"p{i}.jpg", 160 + 40 * i, 120, i)
    out = tmp_path / "res" / "eval.md"
    sheet = tmp_path / "sheet.png"
    rc = main(["eval", "--model", str(model_path), "--limit", "1", "--cuts", "1", "--photos", str(photos),
               "--fcdb", str(tmp_path), "--fixations", "osie", "--sheet", str(sheet), "--sheet-rows", "2", "--out", str(out), "--no-progress", "--threads", "1"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| method |" in text and "| asm |" in text
    if shared_dir() is not None:  # the FCDB annotations are in the shared folder; without it the section says so
        assert f"no FCDB images under {shown(tmp_path)}" in text
    else:
        assert "FCDB protocol" in text and "skipped" in text
    assert "Border-free check (a)" in text and "Timings" in text
    assert out.read_text().startswith("# asm eval") and "| asm |" in out.read_text()
    assert sheet.is_file() and sheet.stat().st_size > 1000
    if shared_dir() is not None:
        assert "GAICD protocol" in text and "kept 1:1" in text and "Free crops next to people's" in text


def test_asm_eval_refuses_a_missing_model(tmp_path, capsys):
    assert main(["eval", "--model", str(tmp_path / "nope.pt"), "--no-progress"]) == 2
    assert "no asm model" in capsys.readouterr().err


def test_tables_show_no_path_of_this_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("ASM_SHARED", str(tmp_path / "shared"))
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert shown(tmp_path / "work" / "asm" / "weights" / "m.pt") == "asm/weights/m.pt"
    assert shown(tmp_path / "shared" / "data" / "fcdb") == "<shared>/data/fcdb"
    assert shown("/elsewhere/models/mine.pt") == "mine.pt"
