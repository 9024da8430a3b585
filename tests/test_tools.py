"""The analysis scripts in tools/ that the indoor model card's figures come from."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stgan_cli.core import geometry
from stgan_cli.model import modelstore

from conftest import random_model

ROOT = Path(__file__).resolve().parents[1]


def test_repeat_g1_applies_the_first_generator_k_times(tmp_path):
    src = random_model(tmp_path / "src", warps=2, std=5e-3)
    out = tmp_path / "g1x3"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "repeat_g1.py"), str(src), "--times", "3", "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rep, g1 = modelstore.load(str(out)).net, modelstore.load(str(src)).net.generators[0]
    assert rep.warps == 3
    torch.manual_seed(0)
    bg, fg = torch.rand(2, 3, 120, 160), torch.rand(2, 4, 120, 160)
    p = torch.zeros(2, 8)
    with torch.no_grad():
        for _ in range(3):
            p = geometry.compose(p, g1(bg, geometry.warp_foreground(fg, p)))
        got = rep(bg, fg).params[-1]
    assert not torch.allclose(p, torch.zeros_like(p))
    torch.testing.assert_close(got, p)


@pytest.mark.slow
def test_critic_probe_trains_d_alone_and_reports_its_ranking(tmp_path):
    from stgan_cli.data import synth_indoor as si

    si.generate(tmp_path / "rooms", 6, seed=3, size=(120, 160), split=1.0, workers=1)
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "critic_probe.py"), str(ROOT / "configs" / "indoor-paper.yaml"),
                        "--data", str(tmp_path / "rooms"), "--steps", "2", "--every", "1", "--n", "12",
                        "--out", str(tmp_path / "run")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["step 0", "step 1", "step 2"]
    shares = [int(line.split("truth in ")[1].split(" %")[0]) for line in lines]
    assert all(s in {round(100 * k / 12) for k in range(13)} for s in shares)  # k of 12 scenes
    assert (tmp_path / "run" / "config.yaml").exists()
