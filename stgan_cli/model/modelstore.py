"""Model folders: ``config.yaml`` + ``model.safetensors`` (float16) + ``README.md`` card.

A model is referred to by a registry name (``indoor`` means ``models/indoor/``) or a folder path.
Weights load with strict key and shape checks; nothing is ever unpickled.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import StganError, suggest
from . import kinds
from .config import ModelConfig
from .kinds import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE

DEFAULT_MODEL = "indoor"
HUB_FILES = (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE)  # what a download from the Hub fetches
# The Hub reads a model card's metadata from this header.
CARD_HEADER = "---\nlibrary_name: stgan\ntags: [image-compositing, st-gan, spatial-transformer]\nlicense: mit\n---\n"


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    description: str
    hub_id: str | None = None  # ORG/REPO[@REVISION] of its published copy: used when not installed


REGISTRY = {
    "indoor": RegistryEntry("indoor", "objects in photos and rooms; real photo pairs and generated rooms (default)"),
    "indoor-paper": RegistryEntry("indoor-paper", "furniture in generated rooms; the paper's five generators"),
    "glasses": RegistryEntry("glasses", "eyeglasses on faces"),
    "placement": RegistryEntry("placement", "the placement critic of composite --place auto (not a generator)"),
    "harmonize": RegistryEntry("harmonize", "the harmonizer of composite --harmonize: colour and light (not a generator)"),
}


def models_dir() -> Path:
    """Where registry names resolve: ``$STGAN_MODELS_DIR`` or the project's ``models/``."""
    env = os.environ.get("STGAN_MODELS_DIR")
    if env:
        return Path(env)
    from ..files.bundled import models_dir as shipped

    return shipped()


class LoadedModel:
    """A model folder whose config is read; the weights load on first use of :attr:`net`.

    Reading the config is cheap, so a command can start decoding images while torch imports and
    the weights load.
    """

    def __init__(self, config: ModelConfig, path: Path, ref: str, device: str = "cpu"):
        self.config, self.path, self.ref, self.device = config, path, ref, device
        self._net = None

    @property
    def net(self):
        if self._net is None:
            self._net = load_weights(self.config, self.path).to(self.device)
        return self._net

    def trust_limits(self):
        """The model's trust region (:class:`~stgan_cli.core.trust_region.Limits`)."""
        from ..core import trust_region

        return trust_region.Limits(**(self.config.trust_region or {}), perturbation=self.config.trained_perturbation)

    def to(self, device: str) -> "LoadedModel":
        self.device = device
        if self._net is not None:
            self._net.to(device)
        return self


def resolve(ref: str | None, offline: bool = False) -> Path:
    """Folder of the model called ``ref`` (registry name, folder, or ``hf-hub:ORG/REPO[@REV]``);
    clear errors for everything else."""
    from . import hub

    ref = ref or DEFAULT_MODEL
    if ref.startswith(hub.HUB_PREFIX):
        return _check_folder(hub.download(ref, HUB_FILES, offline), ref)
    path = Path(ref).expanduser()
    if ref in REGISTRY and not path.exists():
        folder = models_dir() / ref
        if not folder.is_dir() and REGISTRY[ref].hub_id:  # not installed here: the published copy
            hub_ref = hub.HUB_PREFIX + REGISTRY[ref].hub_id
            return _check_folder(hub.download(hub_ref, HUB_FILES, offline), hub_ref)
        if not folder.is_dir():
            hint = "train one with `stgan train`, or pass --model FOLDER"
            from ..files.bundled import in_checkout

            if not in_checkout() and not os.environ.get("STGAN_MODELS_DIR"):
                hint = (f"a wheel carries only the default model, {DEFAULT_MODEL} (with its placement critic and "
                        f"harmonizer); point STGAN_MODELS_DIR at a folder holding {ref}/ (a clone's models/), or "
                        "pass --model FOLDER")
            if ref == DEFAULT_MODEL:
                raise StganError(f"no default model is installed yet ({folder} is missing): {hint}")
            raise StganError(f"model '{ref}' is not installed ({folder} is missing): {hint}")
        return folder
    if not path.exists():
        looks_like_path = os.sep in ref or ref.startswith(".") or Path(ref).suffix
        if looks_like_path:
            raise StganError(f"{ref}: no such model folder")
        raise StganError(f"unknown model '{ref}'{suggest(ref, REGISTRY)}; known: {', '.join(REGISTRY)}")
    if path.is_file():
        with open(path, "rb") as fh:
            head = fh.read(4)
        if path.suffix in {".pt", ".pth", ".ckpt", ".pkl", ".bin"} or head[:1] == b"\x80" or head[:2] == b"PK":
            raise StganError(f"{ref}: looks like a pickled PyTorch file; stgan never unpickles models, "
                             "give a model folder (config.yaml + model.safetensors)")
        raise StganError(f"{ref}: is a file, not a model folder (config.yaml + model.safetensors)")
    return _check_folder(path, ref)


def _check_folder(path: Path, ref: str) -> Path:
    missing = [f for f in (CONFIG_FILE, WEIGHTS_FILE) if not (path / f).is_file()]
    if missing:
        raise StganError(f"{ref}: not a model folder (missing {' and '.join(missing)})")
    return path


def read_config(folder: Path) -> ModelConfig:
    from ..files.yamlio import read_yaml

    cfg_path = folder / CONFIG_FILE
    data = read_yaml(cfg_path) or {}
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == kinds.CRITIC:
        raise StganError(f"{folder}: is the placement critic, not a generator model (composite --place auto "
                         "uses it; --critic names another)")
    if kind == kinds.HARMONIZER:
        raise StganError(f"{folder}: is a harmonizer, not a generator model (composite --harmonize uses it; "
                         "--harmonizer names another)")
    return ModelConfig.from_dict(data, str(cfg_path))


def build(config: ModelConfig):
    from . import archs
    from . import nets

    if config.detail and not archs.reads_detail(config.arch):
        raise StganError(f"{config.name}: detail {config.detail} needs an architecture with a window "
                         f"(refiner-crop, refiner-lite), not '{config.arch}'")

    return nets.STGAN(config.warps, config.image_size, discriminator=config.discriminator, arch=config.arch)


def open_model(ref: str | None, offline: bool = False) -> LoadedModel:
    """Resolve ``ref`` and read its config; weights load lazily (see :class:`LoadedModel`)."""
    folder = resolve(ref, offline)
    return LoadedModel(read_config(folder), folder, ref or DEFAULT_MODEL)


def list_all() -> list[dict]:
    """Registry models (local folders) and stgan models in the Hugging Face cache."""
    from . import hub

    rows = []
    for name, entry in REGISTRY.items():
        folder = models_dir() / name
        present = (folder / WEIGHTS_FILE).exists()
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) if present else 0
        rows.append({"name": name, "source": "registry", "size": size, "present": present,
                     "description": entry.description})
    return rows + hub.cached_models({CONFIG_FILE, WEIGHTS_FILE})


def load(ref: str | None, device: str = "cpu") -> LoadedModel:
    """Open a model and load its weights now (strictly)."""
    model = open_model(ref).to(device)
    model.net  # noqa: B018 - touching the property loads the weights now
    return model


@contextlib.contextmanager
def _no_init():
    """Skip layers' random initialisation (~0.15 s for five generators) when weights are loaded over it.

    (The meta device would do the same but imports half a second of torch internals.)
    """
    import torch.nn as nn

    saved = {cls: cls.reset_parameters for cls in (nn.Linear, nn.Conv2d)}
    try:
        for cls in saved:
            cls.reset_parameters = lambda self: None
        yield
    finally:
        for cls, fn in saved.items():
            cls.reset_parameters = fn


def load_weights(config: ModelConfig, folder: Path):
    """An STGAN network with the folder's weights: every tensor present, of the right shape, nothing extra."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    with _no_init():
        net = build(config)
    weights_path = folder / WEIGHTS_FILE
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise StganError(f"{weights_path}: not a readable safetensors file ({exc})") from None
    expected = net.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        what = f"missing tensor '{missing[0]}'" if missing else f"unexpected tensor '{extra[0]}'"
        more = len(missing) + len(extra) - 1
        raise StganError(f"{weights_path}: does not match config.yaml ({what}"
                         f"{f' and {more} more' if more else ''})")
    for key, value in tensors.items():
        if value.shape != expected[key].shape:
            raise StganError(f"{weights_path}: tensor '{key}' has shape {tuple(value.shape)}, "
                             f"config.yaml needs {tuple(expected[key].shape)}")
    net.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True, assign=True)
    return net.eval().requires_grad_(False)


def save(net, config: ModelConfig, folder: Path, card: str) -> Path:
    """Write a model folder (weights in float16). Each file lands whole or not at all."""
    import yaml
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    from ..files import atomic

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StganError(f"{folder}: cannot create the model folder ({atomic.describe(exc)})") from None
    tensors = {k: (v.half() if v.is_floating_point() else v).detach().cpu().contiguous()
               for k, v in net.state_dict().items()}

    def write(name, writer):
        with atomic.replacing(folder / name) as tmp:
            try:
                writer(str(tmp))
            except SafetensorError as exc:  # how safetensors reports a full disk
                raise StganError(f"{folder / name}: cannot write ({str(exc).splitlines()[0]})") from None

    write(WEIGHTS_FILE, lambda p: save_file(tensors, p, metadata={"format": "pt", "library": "stgan"}))
    write(CONFIG_FILE, lambda p: Path(p).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False)))
    write(CARD_FILE, lambda p: Path(p).write_text(card, encoding="utf-8"))
    return folder
