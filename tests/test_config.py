from dataclasses import dataclass, field

import pytest
import yaml

from caloforge.config import from_dict, load_config, save_config
from caloforge.errors import ConfigError


@dataclass
class Inner:
    width: int = 8


@dataclass
class Outer:
    name: str
    lr: float = 1e-3
    inner: Inner = field(default_factory=Inner)


def test_round_trip(tmp_path):
    cfg = from_dict(Outer, {"name": "a", "lr": 1, "inner": {"width": 4}})
    assert cfg.lr == 1.0 and cfg.inner.width == 4
    path = save_config(cfg, tmp_path / "c.yaml")
    assert load_config(Outer, path) == cfg


def test_unknown_and_bad_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"config.inner: unknown key\(s\) \['depth'\]"):
        from_dict(Outer, {"name": "a", "inner": {"depth": 3}})
    with pytest.raises(ConfigError, match="missing required key 'name'"):
        from_dict(Outer, {})
    with pytest.raises(ConfigError, match="config.lr: expected a number"):
        from_dict(Outer, {"name": "a", "lr": "fast"})
    bad = tmp_path / "c.yaml"
    bad.write_text(yaml.safe_dump({"name": "a", "typo": 1}))
    with pytest.raises(ConfigError, match="c.yaml: unknown key"):
        load_config(Outer, bad)
