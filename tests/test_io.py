import h5py
import numpy as np
import pytest

from caloforge.errors import InputFileError, OutputExistsError
from caloforge.io import ShowerWriter, file_info, find_problems, iter_showers, read_showers, validate_file, write_showers
from helpers import random_showers, write_raw_h5


def test_write_read_round_trip(tmp_path):
    e, s = random_showers(50, 368)
    path = write_showers(tmp_path / "a.h5", e, s, {"geometry": "ds1-photons", "seed": 3}, cpu_time_s=np.ones(50))
    e2, s2 = read_showers(path)
    np.testing.assert_array_equal(e2, e)
    np.testing.assert_array_equal(s2, s)
    info = file_info(path)
    assert info.n_showers == 50 and info.n_voxels == 368
    assert info.attrs["geometry"] == "ds1-photons" and info.attrs["seed"] == 3
    assert "caloforge_version" in info.attrs and "cpu_time_s" in info.extras
    with h5py.File(path) as f:
        assert f["showers"].dtype == np.float32 and f["showers"].compression == "gzip"
    assert not list(tmp_path.glob("*.partial.h5"))


def test_streamed_chunks_equal_whole(tmp_path):
    e, s = random_showers(103, 368)
    path = write_showers(tmp_path / "a.h5", e, s)
    chunks = list(iter_showers(path, chunk_size=10))
    assert len(chunks) == 11
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunks]), s)


def test_never_overwrite(tmp_path):
    e, s = random_showers(2, 368)
    path = write_showers(tmp_path / "a.h5", e, s)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_showers(path, e, s)
    write_showers(path, e * 2, s, overwrite=True)
    np.testing.assert_array_equal(read_showers(path)[0], e * 2)


def test_crash_keeps_finished_chunks(tmp_path):
    e, s = random_showers(20, 368)
    out = tmp_path / "a.h5"
    with pytest.raises(RuntimeError):
        with ShowerWriter(out, 368) as writer:
            writer.append(e[:10], s[:10])
            raise RuntimeError("worker died")
    assert not out.exists()
    partial = tmp_path / "a.h5.partial.h5"
    np.testing.assert_array_equal(read_showers(partial)[1], s[:10])


@pytest.mark.parametrize(
    "builder, message",
    [
        (lambda p: p / "missing.h5", "file not found"),
        (lambda p: (p / "text.h5").write_text("hello") and p / "text.h5", "not an HDF5 file"),
        (lambda p: write_raw_h5(p / "k.h5", showers=np.zeros((2, 368))), "missing dataset 'incident_energies'"),
        (lambda p: write_raw_h5(p / "n.h5", incident_energies=np.ones((3, 1)), showers=np.zeros((2, 368))),
         "has 3 entries but 'showers' has 2"),
    ],
)
def test_structural_errors(tmp_path, builder, message):
    with pytest.raises(InputFileError, match=message):
        validate_file(builder(tmp_path), 368)


def test_content_problems(tmp_path):
    e, s = random_showers(10, 368)
    s[3, 5] = np.nan
    s[7, 1] = -1.0
    s[8, 2] = -2.0
    e[4] = 0.0
    path = write_raw_h5(tmp_path / "bad.h5", incident_energies=e, showers=s)
    problems = "\n".join(find_problems(path, 368))
    assert "'showers' has NaN/inf values in 1 shower(s) (first indices: 3)" in problems
    assert "'showers' has negative energies in 2 shower(s) (first indices: 7, 8)" in problems
    assert "'incident_energies' has zero or negative values in 1 shower(s) (first indices: 4)" in problems
    with pytest.raises(InputFileError, match="368 voxels per shower, expected 6480 of geometry ds2"):
        validate_file(path, 6480, geometry_name="ds2")
