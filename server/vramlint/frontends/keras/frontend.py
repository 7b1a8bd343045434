"""The Keras frontend's registration (frontends/interface.py): the `keras` / `tensorflow` stub
packages, and what a Keras model does differently from a torch module when it is analysed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from vramlint.frontends.interface import Frontend
from vramlint.frontends.keras.layer import is_keras, kstate
from vramlint.frontends.keras.model import declared_inputs, finish
from vramlint.frontends.keras.stubs import keras_module
from vramlint.frontends.keras.training_setup import BACKEND_NOTE, KERAS_DEFAULT_BATCH
from vramlint.frontends.keras.training_setup import HANDLER as TRAINING_SETUP
from vramlint.frontends.torch.tensors import TensorValue

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.values import Instance
    from vramlint.settings import InputSpec


def finish_model(ev: Evaluator, model: Instance, others: Iterable[Any], inputs: tuple[InputSpec, ...]) -> None:
    """Layers held in containers tracked; a model that no code built (a subclassed model's class)
    built on the input shapes another instance of its class was built with in the file, else on
    the configured inputs."""
    specs = None
    if not kstate(model).built:
        for v in others:
            if is_keras(v) and v is not model and v.cls is model.cls and kstate(v).input_specs:
                specs = kstate(v).input_specs
                break
        if specs is None:
            specs = [(tuple(s.shape), s.dtype) for s in inputs] or None
    finish(ev, model, specs)


def model_inputs(model: Instance, batch: int | None, batch_source: str) -> Any:
    """A Keras model's own input shapes (keras.Input, input_shape=, model.build); the batch from
    the setup, else model.fit's default."""
    declared = declared_inputs(model)
    if not declared:
        return None
    for shape, _ in declared:
        if any(d is None for d in shape):
            dims = ", ".join("None" if d is None else str(d) for d in shape)
            return (f"the model's input [{dims}] has a dimension of unknown "
                    "size (None): give the input shape (--input-shape, `inputs` in the configuration)")
    origin = "the model's input shape"
    if batch is None:
        batch, origin = KERAS_DEFAULT_BATCH, f"{origin}, batch {KERAS_DEFAULT_BATCH} (Keras's default in fit())"
    elif batch_source != "default":
        origin = f"{origin}, batch {batch} from {batch_source}"
    args = tuple(TensorValue((batch, *shape), dtype) for shape, dtype in declared)
    return args, {}, origin  # several inputs as several arguments: a functional model takes either form


FRONTEND = Frontend(
    name="keras",
    native_modules=(keras_module,),
    owns_model=is_keras,
    finish_model=finish_model,
    model_inputs=model_inputs,
    forward_signature_checked=False,
    estimate_notes=(BACKEND_NOTE,),
    training_setup=TRAINING_SETUP,
)
