import subprocess
import sys

import numpy as np
import pytest

from caloforge.errors import InputFileError
from caloforge.io import merge_shards, read_extra, read_showers, write_showers
from helpers import random_showers


def _shards(tmp_path, n_shards=3, override=None):
    override = override or {}
    e, s = random_showers(30, 368, seed=2)
    bounds = np.linspace(0, 30, n_shards + 1).astype(int)
    paths = []
    for i in range(n_shards):
        meta = {"geometry": "ds1-photons", "seed": 7, "num_shards": n_shards, "shard_index": i, "generator": "x"}
        meta.update(override.get(i, {}))
        sl = slice(bounds[i], bounds[i + 1])
        paths.append(write_showers(tmp_path / f"s{i}.h5", e[sl], s[sl], meta, cpu_time_s=np.arange(30.0)[sl]))
    return e, s, paths


def test_merge_in_shard_order(tmp_path):
    e, s, paths = _shards(tmp_path)
    out = merge_shards(list(reversed(paths)), tmp_path / "all.h5")
    e2, s2 = read_showers(out)
    np.testing.assert_array_equal(e2, e)
    np.testing.assert_array_equal(s2, s)
    np.testing.assert_array_equal(read_extra(out, "cpu_time_s"), np.arange(30.0))


def test_merge_refuses_mismatch(tmp_path):
    _, _, paths = _shards(tmp_path, override={1: {"seed": 8}})
    with pytest.raises(InputFileError, match="attribute 'seed'"):
        merge_shards(paths, tmp_path / "all.h5")
    (tmp_path / "b").mkdir()
    _, _, paths = _shards(tmp_path / "b")
    with pytest.raises(InputFileError, match="expected each of"):
        merge_shards(paths[:2], tmp_path / "all.h5")
    other = write_showers(tmp_path / "other.h5", *random_showers(3, 533), {"geometry": "ds1-photons"})
    with pytest.raises(InputFileError, match="voxels per shower"):
        merge_shards([paths[0], other], tmp_path / "all.h5")


def test_merge_cli_error(tmp_path):
    _, _, paths = _shards(tmp_path, override={2: {"geometry": "ds2"}})
    proc = subprocess.run([sys.executable, "-m", "caloforge", "merge", *map(str, paths), "--out", str(tmp_path / "m.h5")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "attribute 'geometry'" in proc.stderr and "Traceback" not in proc.stderr
