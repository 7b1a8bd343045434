"""`pipeline("text-generation", model=..., dtype=..., device_map=...)` offline: the model it loads.

transformers' `pipeline()` factory asks the Hub (the task of a model, a commit hash, the tokenizer's
files) besides loading the model. The rule replacing it (`transformers.pipelines.pipeline`) keeps
what decides the model and the memory, from transformers' own source where it is data:

- the task's entry of `SUPPORTED_TASKS` (`check_task(task)`, aliases included): its model classes
  (`"pt"`: `AutoModelForCausalLM` for "text-generation") and its pipeline class (`"impl"`);
- the model: a model object as given; a name or path loaded with the task's first model class's
  `from_pretrained` (offline, pretrained.py), with `revision=`, `config=`, `model_kwargs=` and
  pipeline()'s own `device_map=` and `dtype=` / `torch_dtype=` (default `"auto"`: the config's);
  no model: the task's default checkpoint (`get_default_model_and_revision`), from the cache;
- the result: an object of the task's pipeline class whose `.model` is that model, with `task`,
  `tokenizer` (the one given, else None: tokenizers are files), `framework`. `Pipeline.__init__`
  is not run (device placement, the tokenizer and processors it loads).

`pipe = pipeline(...)` makes `pipe` a model of the file (frontend.py's `held_model`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramlint.engine.values import ClassValue, Instance, NativeFunction, Unknown
from vramlint.frontends.torch.module import is_module
from vramlint.frontends.transformers.pretrained import _attr, _library, _text, _user_ref

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator

# pipeline()'s parameters in order (pipelines/__init__.py).
PARAMS = ("task", "model", "config", "tokenizer", "feature_extractor", "image_processor", "video_processor",
          "processor", "revision", "use_fast", "token", "device", "device_map", "dtype", "trust_remote_code",
          "model_kwargs", "pipeline_class")
# Keywords of pipeline() that its hub lookups take, passed on to from_pretrained.
HUB = ("revision", "token", "trust_remote_code")


def _bind(a: tuple[Any, ...], k: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    bound: dict[str, Any] = {"dtype": "auto"}
    bound.update(zip(PARAMS, a))
    rest = dict(k)
    bound.update({p: rest.pop(p) for p in PARAMS if p in rest})
    return bound, rest


def _model_kwargs(ev: Evaluator, bound: dict[str, Any], rest: dict[str, Any]) -> dict[str, Any] | Unknown:
    """What pipeline() gives the model's from_pretrained: `model_kwargs`, `device_map`, the dtype
    (`torch_dtype=` is its older name; a dtype inside `model_kwargs` wins over the default "auto")."""
    given = bound.get("model_kwargs")
    if given is not None and not isinstance(given, dict):
        return Unknown("pipeline(model_kwargs=...) that is not a dict", ev.current_ref)
    kwargs = dict(given or {})
    if bound.get("device_map") is not None:
        kwargs["device_map"] = bound["device_map"]
    dtype = bound["dtype"]
    if rest.get("torch_dtype") is not None and isinstance(dtype, str) and dtype == "auto":
        dtype = rest["torch_dtype"]
    if "dtype" in kwargs or "torch_dtype" in kwargs:
        dtype = None if isinstance(dtype, str) and dtype == "auto" else dtype
    if dtype is not None:
        kwargs["dtype"] = dtype
    kwargs.update({key: bound[key] for key in HUB if bound.get(key) is not None})
    if bound.get("config") is not None:
        kwargs["config"] = bound["config"]
    return kwargs


def _load(ev: Evaluator, task_entry: Any, name: str, kwargs: dict[str, Any]) -> Any:
    """The task's first model class's from_pretrained (transformers' load_model tries them in order,
    until one loads the checkpoint's weights: with no weights read, the first)."""
    classes = task_entry.get("pt") if isinstance(task_entry, dict) else None
    if not isinstance(classes, tuple) or not classes or not isinstance(classes[0], ClassValue):
        return Unknown(f"pipeline(): no model class for this task in transformers' SUPPORTED_TASKS ({classes!r})",
                       _user_ref(ev))
    return ev.call(_attr(ev, classes[0], "from_pretrained"), (name,), kwargs)


def _pipeline_object(ev: Evaluator, cls: Any, model: Any, task: str, tokenizer: Any) -> Any:
    """An object of the task's pipeline class holding the model (its __init__ not run)."""
    if not isinstance(cls, ClassValue):
        return Unknown(f"pipeline(): no pipeline class for the task {task!r}", _user_ref(ev))
    pipe = Instance(cls)
    pipe.attrs.update(model=model, task=task, tokenizer=tokenizer, framework="pt")
    return pipe


def pipeline(ev: Evaluator, func: Any) -> NativeFunction:
    """transformers.pipeline(task, model=None, ..., **kwargs) -> the task's pipeline, holding its model."""

    def impl(ev2: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        bound, rest = _bind(a, k)
        task, model = bound.get("task"), bound.get("model")
        if isinstance(task, Unknown):
            return task
        if not isinstance(task, str):
            return Unknown("pipeline() without a task: transformers asks the Hub for the model's task; give it, "
                           "e.g. pipeline(\"text-generation\", model=...)", _user_ref(ev2))
        checked = ev2.call(_library(ev2, "pipelines", "check_task"), (task,), {})
        if not isinstance(checked, tuple) or len(checked) != 3:
            return checked if isinstance(checked, Unknown) else Unknown(f"pipeline(): unknown task {task!r}",
                                                                         _user_ref(ev2))
        _, entry, options = checked
        kwargs = _model_kwargs(ev2, bound, rest)
        if isinstance(kwargs, Unknown):
            return kwargs
        if model is None:  # the task's default checkpoint, at its pinned revision
            default = ev2.call(_library(ev2, "pipelines", "get_default_model_and_revision"), (entry, options), {})
            if not isinstance(default, tuple) or len(default) != 2:
                return default if isinstance(default, Unknown) else Unknown(
                    f"pipeline(): the task {task!r} has no default model: give model=...", _user_ref(ev2))
            model = default[0]
            kwargs.setdefault("revision", default[1])
        name = _text(model)
        if name is not None:
            model = _load(ev2, entry, name, kwargs)
        if isinstance(model, Unknown) or not is_module(model):
            return model if isinstance(model, Unknown) else Unknown(
                f"pipeline(model=...) of a {type(model).__name__}: expected a model, a name or a path", _user_ref(ev2))
        cls = bound.get("pipeline_class") or (entry.get("impl") if isinstance(entry, dict) else None)
        return _pipeline_object(ev2, cls, model, task, bound.get("tokenizer"))

    return NativeFunction("transformers.pipeline", impl)


def held_model(value: Any) -> Any:
    """The model a transformers pipeline holds (`pipe.model`), else None."""
    if not isinstance(value, Instance) or not any(
            c.name == "Pipeline" and c.module_name == "transformers.pipelines.base" for c in value.cls.mro
            if isinstance(c, ClassValue)):
        return None
    model = value.attrs.get("model")
    return model if is_module(model) else None


FUNCTION_RULES = {"transformers.pipelines.pipeline": pipeline}
