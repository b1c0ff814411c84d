"""asm.data: annotation readers on the real shared files (counts from the MANIFESTs) and a fake GAICD release."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from asm.data.annotations import read_gaicd_txt
from asm.data.cropping import FCDB, FLMS, GAICD
from asm.data.fixations import OSIE
from asm.data.photos import DEFAULT_VAL_SOURCES, LICENCE_CLASSES, photo_folder, read_photo_manifest, split_by_source
from asm.data.shared import data_dir, shared_dir

SHARED = shared_dir()
needs_shared = pytest.mark.skipif(
    SHARED is None,
    reason="shared data folder not found: set ASM_SHARED or place it at <repo>/../shared",
)
GAICD_IMAGE = "302166.jpg"


# --------------------------------------------------------------------------------------
# shared_dir
# --------------------------------------------------------------------------------------
def test_shared_dir_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("ASM_SHARED", str(tmp_path))
    assert shared_dir() == tmp_path
    monkeypatch.setenv("ASM_SHARED", str(tmp_path / "missing"))
    assert shared_dir() is None
    with pytest.raises(FileNotFoundError, match="ASM_SHARED"):
        data_dir("gaicd")


# --------------------------------------------------------------------------------------
# GAICD (hcic json + official split)
# --------------------------------------------------------------------------------------
@needs_shared
def test_gaicd_counts_and_split():
    full = GAICD(split="all")
    train, test = GAICD(split="train"), GAICD(split="test")
    assert len(full.names) == 1236
    assert full.num_crops == 106_853
    assert len(train.names) == 1036 and len(test.names) == 200
    assert not set(train.names) & set(test.names)
    assert set(train.names) | set(test.names) == set(full.names)
    assert train.num_crops + test.num_crops == 106_853


@needs_shared
def test_gaicd_real_image_item():
    ds = GAICD(split="test")  # root defaults to the shared images folder
    assert ds.available() == [GAICD_IMAGE]
    assert len(ds) == 1
    item = ds[0]
    assert item.name == GAICD_IMAGE and item.path.is_file()
    assert item.boxes.dtype == torch.float32 and item.boxes.shape == (87, 4)
    assert item.scores.shape == (87,)
    assert item.boxes[0].tolist() == [43, 28, 896, 597]
    assert item.scores[0].item() == pytest.approx(4.43)
    assert bool((item.scores[:-1] >= item.scores[1:]).all())  # file is sorted by MOS
    from PIL import Image

    w, h = Image.open(item.path).size
    b = item.boxes
    assert bool((b[:, 0] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 1] >= 0).all() and (b[:, 3] <= h).all())
    assert bool((b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all())
    assert [it.name for it in ds] == [GAICD_IMAGE]


@needs_shared
def test_gaicd_missing_images_clear_error(tmp_path):
    present = {p.name for p in (SHARED / "data" / "gaicd" / "images").glob("*.jpg")}
    ds = GAICD(tmp_path, split="train")  # an empty folder: no image of the split is present
    assert ds.available() == [] and len(ds) == 0
    assert set(GAICD(split="train").available()) <= present  # the shared folder holds a few (211958 is a train image)
    assert len(ds.names) == 1036
    assert ds.annotation(ds.names[0]).boxes.shape[1] == 4  # annotations still readable
    with pytest.raises(FileNotFoundError, match="none of the 1036 annotated images"):
        list(iter(ds))
    with pytest.raises(FileNotFoundError):
        ds[0]


@needs_shared
def test_gaicd_json_matches_official_mat():
    """The hcic json and the official imdb (rows y1; x1; y2; x2) agree on 302166.jpg."""
    sio = pytest.importorskip("scipy.io")
    imdb = sio.loadmat(SHARED / "data/gaicd/imdb_GAIC1000.mat", squeeze_me=True, struct_as_record=False)["imdb"]
    i = [j for j, p in enumerate(imdb.meta.img_path) if p.endswith("/" + GAICD_IMAGE)][0]
    y1, x1, y2, x2 = imdb.bbox.boxes[i]
    mat = {(int(a), int(b), int(c), int(d)): float(s) for a, b, c, d, s in zip(x1, y1, x2, y2, imdb.bbox.gt_scores[i])}
    item = GAICD(split="test").annotation(GAICD_IMAGE)
    js = {tuple(int(v) for v in b): float(s) for b, s in zip(item.boxes.tolist(), item.scores.tolist())}
    assert js.keys() == mat.keys()
    assert all(abs(js[k] - mat[k]) < 1e-5 for k in js)


# --------------------------------------------------------------------------------------
# GAICD release layout (tmp fixture)
# --------------------------------------------------------------------------------------
@pytest.fixture
def fake_gaicd_release(tmp_path):
    """images/{train,test}/*.jpg + annotations/{train,test}/*.txt, lines 'y1 x1 y2 x2 MOS'."""
    from PIL import Image

    for s in ("train", "test"):
        (tmp_path / "images" / s).mkdir(parents=True)
        (tmp_path / "annotations" / s).mkdir(parents=True)
    Image.new("RGB", (40, 30), (120, 80, 40)).save(tmp_path / "images/train/a1.jpg")
    (tmp_path / "annotations/train/a1.txt").write_text(
        "0 0 30 40 3.5\n"  # y1 x1 y2 x2 MOS -> x1y1x2y2 (0, 0, 40, 30)
        "5 10 25 30 -2\n"  # unrated: dropped
        "\n"
        "2 4 20 36 2.25\n"
    )
    (tmp_path / "annotations/train/a2.txt").write_text("0 0 10 10 1\n")  # image a2.jpg missing
    return tmp_path


def test_gaicd_release_layout(fake_gaicd_release):
    root = fake_gaicd_release
    ds = GAICD(root, "train", annotations=root / "annotations")
    assert ds.names == ["a1.jpg", "a2.jpg"]
    assert ds.available() == ["a1.jpg"]
    item = ds[0]
    assert item.path == root / "images/train/a1.jpg"
    assert item.boxes.tolist() == [[0, 0, 40, 30], [4, 2, 36, 20]]
    assert item.scores.tolist() == [3.5, 2.25]
    assert ds.num_crops == 3
    with pytest.raises(FileNotFoundError, match="no GAICD .txt"):
        GAICD(root, "test", annotations=root / "annotations")


def test_gaicd_txt_reader_errors(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("1 2 3 4\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        read_gaicd_txt(p)
    p.write_text("1 2 3 4 x\n")
    with pytest.raises(ValueError, match="not numbers"):
        read_gaicd_txt(p)
    p.write_text("0 0 5 5 -2\n")
    boxes, scores = read_gaicd_txt(p)
    assert boxes.shape == (0, 4) and scores.shape == (0,)


@needs_shared
def test_gaicd_release_layout_with_real_image(tmp_path):
    """The real 302166.jpg written out as a release .txt (plus unrated lines) reads back as the json."""
    ref = GAICD(split="test").annotation(GAICD_IMAGE)
    (tmp_path / "images/test").mkdir(parents=True)
    (tmp_path / "annotations/test").mkdir(parents=True)
    shutil.copy(ref.path, tmp_path / "images/test" / GAICD_IMAGE)
    lines = [f"{int(y1)} {int(x1)} {int(y2)} {int(x2)} {s:.2f}" for (x1, y1, x2, y2), s in zip(ref.boxes.tolist(), ref.scores.tolist())]
    lines.insert(3, "10 10 300 400 -2")
    lines.append("0 0 682 1024 -2")
    (tmp_path / "annotations/test/302166.txt").write_text("\n".join(lines) + "\n")
    ds = GAICD(tmp_path, "test", annotations=tmp_path / "annotations")
    item = ds[0]
    assert item.name == GAICD_IMAGE and item.path.is_file()
    assert torch.equal(item.boxes, ref.boxes)
    assert torch.allclose(item.scores, ref.scores)


# --------------------------------------------------------------------------------------
# FCDB / FLMS
# --------------------------------------------------------------------------------------
@needs_shared
def test_fcdb_cropping(tmp_path):
    train, test, both = (FCDB(tmp_path, s) for s in ("train", "test", "all"))
    assert len(train.names) == 1369 and len(test.names) == 345 and len(both.names) == 1714
    assert train.available() == []
    with pytest.raises(FileNotFoundError, match="FCDB"):
        next(iter(train))
    # first training entry: crop [x, y, w, h] = [266, 6, 757, 399]
    name = "4910188666_04cf9f487d_b.jpg"
    assert train.names[0] == name
    assert train.annotation(name).boxes.tolist() == [[266, 6, 266 + 757, 6 + 399]]
    assert train.annotation(name).scores is None
    (tmp_path / name).write_bytes(b"")  # presence is all that available() checks
    train.refresh()
    assert train.available() == [name] and len(train) == 1
    assert [it.path for it in train] == [tmp_path / name]


@needs_shared
def test_flms(tmp_path):
    ds = FLMS(tmp_path)
    assert len(ds.names) == 500
    assert ds.num_crops == 4_988
    item = ds.annotation("1010203631_Large.jpg")
    assert item.boxes[:2].tolist() == [[124, 276, 1024, 539], [8, 204, 1024, 636]]
    assert all(1 <= ds.annotation(n).boxes.shape[0] <= 10 for n in ds.names)


# --------------------------------------------------------------------------------------
# OSIE
# --------------------------------------------------------------------------------------
@needs_shared
def test_osie_ids_and_split():
    full, train, val = OSIE(), OSIE(split="train"), OSIE(split="val")
    assert len(full) == 500 and full.ids[0] == 1001 and full.ids[-1] == 1500
    assert len(train) == 400 and train.ids[-1] == 1400
    assert len(val) == 100 and val.ids[0] == 1401
    assert not set(train.ids) & set(val.ids)


@needs_shared
def test_osie_item():
    ds = OSIE(split="val")
    item = ds[0]
    assert item.image_id == 1401 and item.path.is_file()
    assert item.size == (600, 800)
    pts = item.points
    assert pts.dtype == np.float32 and pts.ndim == 2 and pts.shape[1] == 2
    assert len(pts) == 149  # distinct fixated pixels of image 1401 (15 viewers; 110-179 per image)
    assert (pts[:, 0] > 0).all() and (pts[:, 0] < 800).all() and (pts[:, 1] > 0).all() and (pts[:, 1] < 600).all()
    assert np.allclose(pts % 1.0, 0.5)  # pixel centres
    from PIL import Image

    mask = np.asarray(Image.open(ds.root / "fixation_points/1401.png")) > 0
    assert mask.sum() == len(pts)
    assert mask[(pts[:, 1] - 0.5).astype(int), (pts[:, 0] - 0.5).astype(int)].all()


# --------------------------------------------------------------------------------------
# Photos
# --------------------------------------------------------------------------------------
@needs_shared
def test_photo_folder_matches_manifest():
    manifest = read_photo_manifest(SHARED / "data/photos/MANIFEST.txt")
    assert manifest["github-imagenet-sample-images"] == ("RESEARCH", 1000)
    assert manifest["darknet-data"][0] == "UNCLEAR"
    every = photo_folder(classes=LICENCE_CLASSES)
    by_source: dict[str, int] = {}
    for p in every:
        by_source[p.source] = by_source.get(p.source, 0) + 1
        assert p.licence == manifest[p.source][0]
    for source, n in by_source.items():
        assert n == manifest[source][1], source  # every present folder is complete
    assert "github-selfexsr-BSD100" not in by_source  # listed in the MANIFEST, not in the folder
    default = photo_folder()
    assert {p.licence for p in default} == {"OPEN", "RESEARCH"}
    open_only = photo_folder(classes=("OPEN",))
    assert {p.licence for p in open_only} == {"OPEN"} and len(open_only) == 76
    with pytest.raises(ValueError, match="unknown licence"):
        photo_folder(classes=("FREE",))


@needs_shared
def test_split_by_source():
    items = photo_folder(classes=LICENCE_CLASSES)
    train, val = split_by_source(items)
    assert len(train) + len(val) == len(items)
    assert not {p.source for p in train} & {p.source for p in val}
    assert {p.source for p in val} == set(DEFAULT_VAL_SOURCES)
    assert split_by_source(items) == (train, val)  # deterministic
    tr, va = split_by_source(photo_folder(classes=("OPEN",)))
    assert len(va) == 14 and len(tr) == 62
    with pytest.raises(ValueError, match="val_sources"):
        split_by_source(items, val_sources=("nope",))


def test_split_by_source_plain_items():
    class It:
        def __init__(self, source):
            self.source = source

    items = [It("a"), It("b"), It("a"), It("c")]
    train, val = split_by_source(items, val_sources=("a",))
    assert [i.source for i in train] == ["b", "c"] and [i.source for i in val] == ["a", "a"]
    with pytest.raises(ValueError):
        split_by_source(items, val_sources=("a", "b", "c"))




# --------------------------------------------------------------------------------------
# fixation sets
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["osie", "eyecrowd", "nus"])
def test_fixation_sets_split_without_overlap(name):
    from asm.data.fixations import FIXATION_SETS, fixation_set

    folder = FIXATION_SETS[name].folder
    if SHARED is None or not (SHARED / "data" / folder).is_dir():
        pytest.skip(f"shared data/{folder} not present")
    train, val, full = (fixation_set(name, s) for s in ("train", "val", "all"))
    assert set(train.ids).isdisjoint(val.ids) and sorted(train.ids + val.ids) == full.ids
    assert len(val) == 100 and len(train) == len(full) - 100
    if name != "osie":  # every 4th id, counted in sorted order
        assert val.ids == full.ids[3::4]
    item = val[0]
    H, W = item.size
    assert item.path.is_file() and len(item.points) > 20
    assert (item.points >= 0).all() and (item.points[:, 0] <= W).all() and (item.points[:, 1] <= H).all()
    assert 0 < val.sigma(W, H) < 0.05 * max(W, H)


def test_eyecrowd_heads_are_boxes_in_the_photo():
    from asm.data.fixations import EyeCrowd

    if SHARED is None or not (SHARED / "data" / "eyecrowd").is_dir():
        pytest.skip("shared data/eyecrowd not present")
    data = EyeCrowd(split="val")
    heads = data.heads(data.ids[0])
    assert heads.ndim == 2 and heads.shape[1] == 4 and len(heads) >= 3
    assert (heads[:, 2] > heads[:, 0]).all() and (heads[:, 3] > heads[:, 1]).all()
    assert (heads >= 0).all() and (heads[:, 2] <= 800).all() and (heads[:, 3] <= 600).all()


def test_an_unknown_fixation_set_is_refused():
    from asm.data.fixations import fixation_set

    with pytest.raises(ValueError, match="unknown fixation set"):
        fixation_set("mit1003")
