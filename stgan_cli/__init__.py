"""stgan: put an object into a photo so that it looks like it belongs there (ST-GAN, CVPR 2018).

In Python: ``stgan_cli.load(model).composite(fg, bg, box=...)`` (:mod:`stgan_cli.api`)."""

# Kept free of imports: `stgan --help` and `--version` must not pay for torch or OpenCV; the API is
# imported on first use.
__version__ = "0.1.0"
__all__ = ["Composite", "Stgan", "load"]


def __getattr__(name: str):
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'stgan_cli' has no attribute {name!r}")
