"""The FastGaze teacher: architecture from the MANIFEST, its numeric check, the baseline peer."""

import numpy as np
import pytest
import torch

from asm.evaluation import peers
from asm.data.shared import shared_dir
from asm.models.fastgaze import CELL, FastGaze, centre_gaussian, density_on_image, fitted_size

SHARED = shared_dir()
WEIGHTS = SHARED / "weights" / "fastgaze-saliency.pth" if SHARED else None
needs_weights = pytest.mark.skipif(WEIGHTS is None or not WEIGHTS.is_file(), reason="needs ../shared/weights/fastgaze-saliency.pth")


def test_architecture_matches_the_manifest():
    model = FastGaze()
    assert sum(p.numel() for p in model.parameters()) == 121_064
    # one output cell per 16 x 16 input pixels, ceil-rounded (ceil_mode pooling)
    assert model(torch.zeros(1, 3, 96, 128)).shape == (1, 1, 6, 8)
    assert model(torch.zeros(1, 3, 97, 129)).shape == (1, 1, 7, 9)


@needs_weights
def test_manifest_numeric_check():
    model = FastGaze.from_file(WEIGHTS)
    torch.manual_seed(0)
    rgb = torch.rand(1, 3, 96, 128) * 255  # taken as an R, G, B image
    x = rgb[:, [2, 1, 0]] - torch.tensor([103.939, 116.779, 123.68])[None, :, None, None]
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 1, 6, 8)
    assert y.sum().item() == pytest.approx(32.4088, abs=2e-3)
    assert y.max().item() == pytest.approx(1.3852, abs=2e-4)


@needs_weights
def test_density_peaks_on_the_bright_object():
    model = FastGaze.from_file(WEIGHTS)
    rgb = np.full((300, 400, 3), 40, np.uint8)
    rgb[100:180, 280:360] = (230, 60, 40)  # a red patch right of centre
    d = model.density(rgb)
    assert d.sum() == pytest.approx(1.0, abs=1e-5)
    r, c = np.unravel_index(np.argmax(d), d.shape)
    assert 280 <= (c + 0.5) * CELL <= 360 and 100 <= (r + 0.5) * CELL <= 180


def test_density_on_image_crops_the_overhanging_cells():
    cells = np.ones((2, 3), np.float32)  # an image fitted to 20 x 40 px: cells cover 32 x 48
    assert fitted_size(50, 100, fit=40) == (20, 40)
    d = density_on_image(cells, 50, 100, fit=40)
    assert d.shape == (20, 40) and d.sum() == pytest.approx(1.0)
    assert np.allclose(d, 1 / 800)


def test_centre_gaussian_is_symmetric_and_peaks_in_the_middle():
    g = centre_gaussian(5, 7)
    assert g[2, 3] == g.max() and np.allclose(g, g[::-1, ::-1])
    assert g[2, 0] == pytest.approx(np.exp(-0.5 * ((0.5 / 7 - 0.5) * 3) ** 2), rel=1e-5)


@needs_weights
def test_fastgaze_centre_peer_follows_the_object():
    rgb = np.full((300, 600, 3), 40, np.uint8)
    rgb[120:200, 40:120] = (230, 60, 40)  # the object sits on the left
    box = peers.fastgaze_centre(rgb, 1.0)
    assert box[2] - box[0] == 300 and box[3] - box[1] == 300
    assert box[0] < 150  # pulled left of the centred box [150, 0, 450, 300]
    assert box[0] <= 40 and box[2] >= 120  # keeps the object
