"""FastSim detector reduction: depth slices in X0 and effective constants (arXiv:hep-ex/0001020)."""

import numpy as np
import pytest

from caloforge.errors import ConfigError
from caloforge.fastsim import gflash_params, get_detector
from caloforge.fastsim.detector import MATERIALS, period_constants
from caloforge.fullsim import Block, Detector, Slab


def test_ds2_stack_constants_match_the_reference_stack():
    det = get_detector("ds2")
    w, si = MATERIALS["G4_W"], MATERIALS["G4_Si"]
    pair_x0 = 1.4 / w.x0_mm + 0.3 / si.x0_mm
    # 45 readout layers of 2 pairs: boundaries every 2 pairs
    assert det.geometry.n_layers == 45 and det.slice_layer.tolist() == list(range(45))
    np.testing.assert_allclose(np.diff(det.slice_edges_x0), 2 * pair_x0, rtol=1e-12)
    assert det.depth_x0 == pytest.approx(90 * pair_x0) and det.depth_x0 == pytest.approx(36.247, abs=1e-3)
    # effective constants of the W/Si mix (thickness fractions 1.4/1.7, 0.3/1.7)
    assert det.x0_mm == pytest.approx(1.7 / (1.4 / 3.504 + 0.3 / 93.70))
    assert det.x0_mm == pytest.approx(4.221, abs=1e-3)
    assert det.moliere_mm == pytest.approx(1.7 / (1.4 / w.moliere_mm + 0.3 / si.moliere_mm))
    assert det.moliere_mm == pytest.approx(10.88, abs=0.01)
    assert det.critical_mev == pytest.approx(8.226, abs=1e-3)
    assert det.z_eff == pytest.approx(72.49, abs=0.01)
    assert det.constants.sampling_frequency == pytest.approx(det.x0_mm / 1.7)
    np.testing.assert_allclose(det.layer_centres_x0[:2], [pair_x0, 3 * pair_x0])


def test_moliere_radius_from_pdg_scale_energy():
    # R_M = 21.2052 MeV X0 / E_c reproduces the PDG Moliere radii of W (9.327 mm) and Si (49.44 mm)
    assert MATERIALS["G4_W"].moliere_mm == pytest.approx(9.327, abs=0.01)
    assert MATERIALS["G4_Si"].moliere_mm == pytest.approx(49.44, abs=0.05)


def test_ds3_shares_the_ds2_stack_so_ds2_parameters_apply():
    ds2, ds3 = get_detector("ds2"), get_detector("ds3")
    assert ds2.stack_summary() == ds3.stack_summary()
    gflash_params(ds2).check_detector(ds3, "e-")  # no error
    with pytest.raises(ConfigError, match="moliere_mm|x0_mm"):
        gflash_params(ds2).check_detector(get_detector("pbwo4"))


def test_irregular_detector_has_dead_material_and_voxel_less_layers():
    det = get_detector("ds1-photons-like")
    layers = det.slice_layer
    assert layers[0] == -1  # 1 X0 of iron in front is not read out
    recorded = sorted(set(layers[layers >= 0].tolist()))
    assert recorded == [0, 1, 2, 3, 12]  # the layers of the ds1-photons binning that have voxels
    assert np.all(np.diff(det.slice_edges_x0) <= 1.0 + 1e-9)
    front = det.slice_edges_x0[np.flatnonzero(layers == 0)[0]]
    assert front == pytest.approx(17.6 / MATERIALS["G4_Fe"].x0_mm)
    # the main (largest) sampling block is the Pb/Fe/LAr accordion
    assert det.constants.x0_mm == pytest.approx(period_constants(
        [Slab("G4_Pb", 1.53), Slab("G4_Fe", 0.4), Slab("G4_lAr", 4.2, True)]).x0_mm)


def test_unknown_material_is_a_clear_error():
    det = Detector("odd", [Block([Slab("G4_Au", 1.0), Slab("G4_Si", 0.3, True)], repeat=90)], "ds2",
                   active_per_readout_layer=2)
    with pytest.raises(ConfigError, match="G4_Au"):
        get_detector(det)


def test_unknown_detector_name():
    with pytest.raises(ConfigError, match="unknown detector"):
        get_detector("nope")
