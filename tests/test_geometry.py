import numpy as np
import pytest

from caloforge.errors import CaloforgeError, InputFileError
from caloforge.geometry import CylindricalReadout, get_geometry, load_binning_xml, write_binning_xml

PRESETS = {"ds1-photons": (368, 5, False), "ds1-pions": (533, 7, False), "ds2": (6480, 45, True), "ds3": (40500, 45, True)}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_voxel_counts(name):
    geo = get_geometry(name)
    n_voxels, n_nonempty, regular = PRESETS[name]
    assert geo.n_voxels == n_voxels
    assert int((geo.voxels_per_layer > 0).sum()) == n_nonempty
    assert geo.is_regular is regular
    assert geo.layer_offsets[-1] == n_voxels


def test_ds2_edges_and_alpha():
    geo = get_geometry("ds2")
    assert geo.n_layers == 45 and geo.grid_shape == (45, 16, 9)
    np.testing.assert_allclose(geo.layers[0].r_edges, np.arange(10) * 4.65, atol=1e-9)
    assert geo.alpha_binned_layers.tolist() == list(range(45))
    assert geo.same_binning(CylindricalReadout.regular("x", 45, 16, 9, 4.65))


def test_ds1_photons_layers():
    geo = get_geometry("ds1-photons")
    assert geo.n_layers == 24
    assert geo.voxels_per_layer[:4].tolist() == [8, 160, 190, 5]
    assert geo.voxels_per_layer[12] == 5
    assert geo.alpha_binned_layers.tolist() == [1, 2]
    assert geo.grid_shape == (24, 10, 19)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_index_round_trip(name):
    geo = get_geometry(name)
    idx = np.arange(geo.n_voxels)
    layer, alpha, r = geo.layer_alpha_r(idx)
    np.testing.assert_array_equal(geo.flat_index(layer, alpha, r), idx)
    # r runs fastest, then alpha, then layer
    assert (layer[1:] >= layer[:-1]).all()


def test_flat_index_convention_ds2():
    geo = get_geometry("ds2")
    assert int(geo.flat_index(0, 0, 1)) == 1
    assert int(geo.flat_index(0, 1, 0)) == 9
    assert int(geo.flat_index(1, 0, 0)) == 144
    assert int(geo.flat_index(44, 15, 8)) == 6479
    with pytest.raises(CaloforgeError):
        geo.flat_index(0, 16, 0)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_grid_round_trip_exact(name):
    geo = get_geometry(name)
    rng = np.random.default_rng(1)
    showers = rng.random((3, geo.n_voxels)).astype(np.float32)
    grid = geo.to_grid(showers)
    assert grid.shape == (3, *geo.grid_shape)
    assert int(geo.grid_mask.sum()) == geo.n_voxels
    assert float(np.abs(grid[:, ~geo.grid_mask]).sum()) == 0.0
    np.testing.assert_array_equal(geo.from_grid(grid), showers)


def test_grid_round_trip_torch():
    torch = pytest.importorskip("torch")
    geo = get_geometry("ds1-pions")
    x = torch.rand(2, geo.n_voxels)
    assert torch.equal(geo.from_grid(geo.to_grid(x)), x)


def test_voxel_centres():
    geo = get_geometry("ds2")
    v = int(geo.flat_index(3, 0, 0))
    assert geo.voxel_r_centre[v] == pytest.approx(2.325)
    assert geo.voxel_alpha_centre[v] == pytest.approx(-np.pi + np.pi / 16)
    assert geo.voxel_eta[v] == pytest.approx(2.325 * np.cos(-np.pi + np.pi / 16))
    assert geo.voxel_phi[v] == pytest.approx(2.325 * np.sin(-np.pi + np.pi / 16))
    pions = get_geometry("ds1-pions")
    assert pions.voxel_alpha_centre[0] == 0.0  # layer 0 is not alpha-binned


def test_xml_write_round_trip(tmp_path):
    geo = get_geometry("ds1-photons")
    back = load_binning_xml(write_binning_xml(geo, tmp_path / "b.xml"))
    assert back.same_binning(geo)
    assert CylindricalReadout.from_dict(geo.to_dict()).same_binning(geo)


def test_bad_xml_errors(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        load_binning_xml(tmp_path / "missing.xml")
    bad = tmp_path / "bad.xml"
    bad.write_text("<Bins><Bin>")
    with pytest.raises(InputFileError, match="not valid XML"):
        load_binning_xml(bad)
    bad.write_text('<Bins><Bin name="x"><Layer id="0" r_edges="0,2,1" n_bin_alpha="1"/></Bin></Bins>')
    with pytest.raises(CaloforgeError, match="increase"):
        load_binning_xml(bad)
    with pytest.raises(CaloforgeError, match="unknown geometry"):
        get_geometry("ds9")
