"""The Keras frontend: `keras` (Keras 3), `tf.keras` and `tensorflow.keras` on the same engine.

A Keras layer is a module of the torch frontend's kind (its weights are parameters, the
non-trainable ones with requires_grad False), so counting, the module tree, the memory model, the
CLI and the language server work on Keras code unchanged. What differs is Keras's own semantics:
weights are created when a layer is first called, from its input shape (`layer.py`); functional
models are graphs of symbolic tensors replayed on real ones (`layer.py`); layers follow Keras's
shape rules, channels-last by default (`catalog/`); `keras.ops` and the `tf.*` functions map onto
the torch frontend's tensor functions (`ops.py`); `stubs.py` is the `keras` / `tensorflow` package.
"""
