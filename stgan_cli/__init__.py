"""stgan: put an object into a photo so that it looks like it belongs there (ST-GAN, CVPR 2018)."""

# Kept free of imports: `stgan --help` and `--version` must not pay for torch or OpenCV.
__version__ = "0.1.0"
