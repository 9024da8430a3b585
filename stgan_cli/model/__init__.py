"""Models: the folders and their registry (:mod:`.modelstore`), the Hugging Face Hub (:mod:`.hub`), the
generators' loop (:mod:`.nets`), the engines that run them (:mod:`.onnx_engine`: PyTorch and
onnxruntime side by side), exports (:mod:`.export`), and the folders of other kinds (``kind:`` in their
config, :mod:`.kinds`): the placement critic and the harmonizer."""
