import subprocess
import sys

import numpy as np
import pytest

from caloforge.cli import main
from caloforge.io import write_showers
from helpers import random_showers, write_raw_h5


def test_info_valid(tmp_path, capsys):
    e, s = random_showers(20, 6480)
    path = write_showers(tmp_path / "a.h5", e, s, {"geometry": "ds2"})
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "showers     20" in out and "geometry    ds2" in out and "valid       yes" in out


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: p / "nope.h5", "file not found"),
        (lambda p: write_raw_h5(p / "x.h5", showers=np.zeros((2, 6480))), "missing dataset"),
        (lambda p: write_raw_h5(p / "y.h5", incident_energies=np.ones((2, 1)), showers=np.zeros((3, 6480))), "entries"),
    ],
)
def test_info_errors_one_line_no_traceback(tmp_path, make, expected):
    path = make(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "caloforge", "info", str(path), "--geometry", "ds2"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_info_content_problems_exit_nonzero(tmp_path, capsys):
    e, s = random_showers(5, 6480)
    s[2, 0] = -3.0
    path = write_raw_h5(tmp_path / "neg.h5", incident_energies=e, showers=s)
    assert main(["info", str(path), "--geometry", "ds2"]) == 1
    assert "negative energies in 1 shower(s) (first indices: 2)" in capsys.readouterr().out
    path2 = write_raw_h5(tmp_path / "wrong.h5", incident_energies=e, showers=np.zeros((5, 100)))
    assert main(["info", str(path2), "--geometry", "ds2"]) == 1
    assert "expected 6480" in capsys.readouterr().out
