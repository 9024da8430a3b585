"""Every ``stgan composite`` example in the README's code blocks runs as pasted from the repository
root: the files it names are in ``sample_data/`` (or, for faces, in ``../shared/realdata``)."""

import re
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stgan_cli.cli import app

from conftest import REALDATA, random_model

ROOT = Path(__file__).resolve().parents[1]


def examples() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip().startswith("stgan composite")]


def test_the_readme_has_composite_examples_for_each_kind_of_input():
    found = examples()
    assert len(found) >= 9
    for words in ("--mask", "--box", "--at", "--init", "--cross", "--model glasses", "runs/indoor/model", "hf-hub:",
                  "--harmonize"):
        assert any(words in e for e in found), words


def hub_cache(cache: Path, model: Path) -> None:
    """ORG/REPO at revision v1 in a Hugging Face cache, as `stgan models download` would leave it."""
    commit = "0" * 40
    repo = cache / "models--ORG--REPO"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "v1").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in model.iterdir():
        shutil.copy(f, snap / f.name)


@pytest.mark.slow
def test_every_composite_example_runs_as_pasted(tmp_path, monkeypatch):
    import huggingface_hub.constants

    work = tmp_path / "repo"
    work.mkdir()
    (work / "sample_data").symlink_to(ROOT / "sample_data")
    random_model(work / "runs" / "indoor" / "model")  # what `stgan train ... --out runs/indoor` leaves
    hub_cache(tmp_path / "hf", work / "runs" / "indoor" / "model")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.chdir(work)
    skipped = []
    for line in examples():
        if "../shared/realdata" in line:
            if not (REALDATA / "faces" / "no_glasses").is_dir():
                skipped.append(line)
                continue
            line = line.replace("../shared/realdata", str(REALDATA))
        args = shlex.split(line, comments=True)[1:]
        r = CliRunner().invoke(app, args, catch_exceptions=False)
        assert r.exit_code == 0, (line, r.stderr)
        out = Path(args[args.index("--out") + 1])
        assert out.exists(), line
    assert (work / "again.png").exists() and (work / "out.json").exists() and (work / "steps").is_dir()
    if skipped:
        pytest.skip(f"ran all but {len(skipped)} glasses examples: they need faces from ../shared/realdata")
