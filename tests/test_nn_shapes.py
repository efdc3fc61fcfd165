"""Networks: shapes on all four CaloChallenge geometries (GLaM for dataset 1), rotation
equivariance in alpha, GLaM initialisation from bin overlaps."""

import numpy as np
import pytest
import torch

from caloforge.diffusion import Denoiser
from caloforge.geometry import get_geometry
from caloforge.nn import GLaM, CylinderUNet, LayerMLP, RegularGrid, UNetConfig, overlap_matrix

TINY = UNetConfig(channels=[8, 8], emb_dim=16)


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    """Give every weight a random value (zero-initialised output layers would make tests trivial)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen))


@pytest.mark.parametrize("name,adapter,grid", [
    ("ds1-photons", GLaM, (5, 10, 30)),
    ("ds1-pions", GLaM, (7, 10, 23)),
    ("ds2", RegularGrid, (45, 16, 9)),
    ("ds3", RegularGrid, (45, 50, 18)),
])
def test_unet_shapes_all_geometries(name, adapter, grid):
    geometry = get_geometry(name)
    net = CylinderUNet(geometry, n_cond=3, config=TINY)
    assert isinstance(net.adapter, adapter)
    assert net.grid_shape == grid
    x = torch.randn(2, geometry.n_voxels)
    out = net(x, torch.zeros(2), torch.zeros(2, 3))
    assert out.shape == (2, geometry.n_voxels)
    _randomise(net)
    with torch.no_grad():
        out = net(x, torch.zeros(2), torch.zeros(2, 3))
    assert torch.isfinite(out).all() and float(out.abs().mean()) > 0


@pytest.mark.parametrize("stem", [0, 4])
def test_denoiser_is_equivariant_to_alpha_rolls(stem):
    geometry = get_geometry("ds2")
    net = Denoiser(CylinderUNet(geometry, n_cond=1, config=UNetConfig(stem_channels=stem, channels=[8, 12, 16],
                                                                       emb_dim=16, attention=2)))
    _randomise(net, seed=stem)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, geometry.n_voxels, generator=gen)
    sigma, cond = torch.tensor([0.1, 1.0, 10.0]), torch.randn(3, 1, generator=gen)

    def roll(v, k):  # rotate every layer by k alpha bins
        return v.reshape(3, 45, 16, 9).roll(k, dims=2).reshape(3, -1)

    with torch.no_grad():
        out = net(x, sigma, cond)
        scale = float(out.abs().max())
        for k in range(1, 16):
            assert torch.allclose(net(roll(x, k), sigma, cond), roll(out, k), atol=1e-5 * scale, rtol=0)
        # a non-rotation (flipping r) is not a symmetry: the test can fail
        flipped = x.reshape(3, 45, 16, 9).flip(3).reshape(3, -1)
        assert not torch.allclose(net(flipped, sigma, cond), out.reshape(3, 45, 16, 9).flip(3).reshape(3, -1),
                                  atol=1e-3 * scale)


def test_glam_initialisation_from_overlaps():
    geometry = get_geometry("ds1-photons")
    glam = GLaM(geometry)
    for enc, dec, idx in zip(glam.encoders, glam.decoders, glam.layer_index):
        enc, dec = enc.detach().double(), dec.detach().double()
        lay = geometry.layers[idx]
        inside = np.zeros(glam.grid_shape[1:], bool)
        r_hi = np.unique(np.concatenate([geometry.layers[i].r_edges for i in glam.layer_index]))[1:]
        inside[:, r_hi <= lay.r_edges[-1] + 1e-9] = True
        rows = enc.sum(1).numpy().reshape(glam.grid_shape[1:])
        # grid bins inside the layer take an area-weighted mean (weights sum to 1); outside: nothing
        assert np.allclose(rows[inside], 1.0) and np.allclose(rows[~inside], 0.0)
        # decoder = pseudo-inverse: decode(encode(v)) == v at initialisation
        assert torch.allclose(dec @ enc, torch.eye(enc.shape[1], dtype=torch.float64), atol=1e-6)
    x = torch.randn(4, geometry.n_voxels)
    assert torch.allclose(glam.decode(glam.encode(x)), x, atol=1e-4)


def test_overlap_matrix_halves():
    # one voxel [0, 2) mm over the full circle -> grid of 2 alpha x 2 r bins [0,1), [1,2)
    enc = overlap_matrix(np.array([0.0, 2.0]), 1, np.array([0.0, 1.0, 2.0]), 2)
    assert enc.shape == (4, 1) and np.allclose(enc, 1.0)
    # two radial voxels onto one grid bin: area weights 1/4 and 3/4
    enc = overlap_matrix(np.array([0.0, 1.0, 2.0]), 1, np.array([0.0, 2.0]), 1)
    assert np.allclose(enc, [[0.25, 0.75]])


def test_layer_mlp_shape():
    net = LayerMLP(46, 1)
    _randomise(net)
    out = net(torch.randn(5, 46), torch.zeros(5), torch.zeros(5, 1))
    assert out.shape == (5, 46) and torch.isfinite(out).all()
