"""Everything but this lives in pyproject.toml.  A wheel carries the default model, the placement
critic its `--place auto` uses, the harmonizer of `--harmonize`, and the sample images, which live at the repository's top level (models/indoor, sample_data) rather than inside the
package, so that `pip install .` gives a `stgan composite` that works: setuptools maps them in as data
packages here, since pyproject.toml's package finder cannot name folders outside the package."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["stgan_cli*"]) + ["stgan_cli.bundled.indoor", "stgan_cli.bundled.placement",
                                                      "stgan_cli.bundled.harmonize", "stgan_cli.bundled.samples"],
    package_dir={"stgan_cli.bundled.indoor": "models/indoor", "stgan_cli.bundled.placement": "models/placement",
                 "stgan_cli.bundled.harmonize": "models/harmonize", "stgan_cli.bundled.samples": "sample_data"},
    package_data={"stgan_cli.app": ["page.html"],
                  "stgan_cli.bundled.indoor": ["config.yaml", "model.safetensors", "model.onnx", "README.md"],
                  "stgan_cli.bundled.placement": ["config.yaml", "model.safetensors", "README.md"],
                  "stgan_cli.bundled.harmonize": ["config.yaml", "model.safetensors", "model.onnx", "README.md"],
                  "stgan_cli.bundled.samples": ["*.png", "*.jpg", "*.json"]},
)
