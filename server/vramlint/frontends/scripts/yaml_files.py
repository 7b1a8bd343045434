"""YAML files of the workspace as evaluator values, each scalar tagged with its key and line.

PyYAML's safe composer gives each node's line; values are built with its SafeConstructor (no
Python object is ever constructed from a tag). A malformed file, or one whose aliases expand past
MAX_DATA_ITEMS values (a "billion laughs" file), is a located Unknown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramlint.engine.provenance import source_of, sourced
from vramlint.engine.script_inputs import (
    MAX_DATA_ITEMS,
    decode,
    display_path,
    file_text,
    read_workspace_file,
)
from vramlint.engine.values import Args, Kwargs, ModuleValue, NativeFunction, Unknown

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class YamlProblem(Exception):
    pass


def parse_yaml(text: str, label: str, prefix: tuple[Any, ...] = ()) -> Any:
    """The first document of `text`, scalars tagged "label: key.path (line N)" (the key path
    under `prefix`, where the document is placed); YamlProblem says what is wrong."""
    import yaml  # (here: PyYAML's import was a fifth of the frontends' imports, and most files read no YAML)

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise YamlProblem(f"{label}: malformed YAML: {getattr(err, 'problem', None) or 'unparsable'}{where}") from None
    except RecursionError:
        raise YamlProblem(f"{label}: YAML nested too deeply") from None
    if node is None:
        return None
    constructor = yaml.constructor.SafeConstructor()
    count = [0]

    def walk(n: Any, key: tuple[Any, ...]) -> Any:
        count[0] += 1
        if count[0] > MAX_DATA_ITEMS:
            raise YamlProblem(f"{label}: more than {MAX_DATA_ITEMS:,} values (aliases?): not read")
        if isinstance(n, (yaml.MappingNode, yaml.SequenceNode)) and n.tag not in _PLAIN_TAGS:
            raise YamlProblem(f"{label}: the tag {n.tag} is not read (line {n.start_mark.line + 1})")
        if isinstance(n, yaml.MappingNode):
            constructor.flatten_mapping(n)
            out = {}
            for k_node, v_node in n.value:
                k = constructor.construct_object(k_node, deep=True)
                if isinstance(k, (list, dict)):
                    raise YamlProblem(f"{label}: a key that is not a scalar (line {k_node.start_mark.line + 1})")
                out[k] = walk(v_node, (*key, k))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [walk(x, (*key, i)) for i, x in enumerate(n.value)]
        value = constructor.construct_object(n, deep=True)
        where = ".".join(str(k) for k in (*prefix, *key)) or "(top level)"
        return sourced(value, f"{label}: {where} (line {n.start_mark.line + 1})")

    try:
        return walk(node, ())
    except yaml.YAMLError as err:
        raise YamlProblem(f"{label}: YAML not read: {getattr(err, 'problem', None) or type(err).__name__}") from None
    except RecursionError:
        raise YamlProblem(f"{label}: YAML nested too deeply") from None


def load_yaml_file(ev: Evaluator, path: Any, base: str | None = None,
                   prefix: tuple[Any, ...] = ()) -> tuple[str, Any, str] | Unknown:
    """(real path, data, text) of a workspace YAML file, or a located Unknown."""
    got = read_workspace_file(ev, path, base)
    if isinstance(got, Unknown):
        return got
    real, data = got
    text = decode(ev, real, data)
    if isinstance(text, Unknown):
        return text
    try:
        return real, parse_yaml(text, display_path(ev.loader.script_inputs, real), prefix), text
    except YamlProblem as err:
        return Unknown(str(err), ev.current_ref)


def yaml_text_value(ev: Evaluator, source: Any) -> Any:
    """`yaml.safe_load(f)` / `yaml.safe_load(text)`."""
    if isinstance(source, str):
        ref = ev.current_ref
        label = source_of(source) or (f"YAML text at line {ref.location.line}" if ref is not None else "YAML text")
        try:
            return parse_yaml(source, label)
        except YamlProblem as err:
            return Unknown(str(err), ev.current_ref)
    got = file_text(ev, source, binary_ok=True)
    if isinstance(got, Unknown):
        return got
    real, data = got
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    try:
        return parse_yaml(text, display_path(ev.loader.script_inputs, real))
    except YamlProblem as err:
        return Unknown(str(err), ev.current_ref)


def parse_scalar(text: str) -> Any:
    """A command-line value as hydra and OmegaConf read it (`256` an int, `true` a bool)."""
    import yaml

    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return v if isinstance(v, (int, float, str, bool)) or v is None else text


def yaml_module(loader: Loader, name: str) -> ModuleValue | None:
    if name != "yaml":
        return None
    from vramlint.engine.builtins import NoOp, _module

    def load(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        return yaml_text_value(ev, a[0] if a else k.get("stream"))

    loading = NativeFunction("yaml.safe_load", load)
    obj = loader.builtins["object"]
    from vramlint.engine.values import ClassValue

    ns: dict[str, Any] = {n: loading for n in ("safe_load", "load", "full_load", "unsafe_load")}
    for cls in ("SafeLoader", "Loader", "FullLoader", "UnsafeLoader", "CLoader", "CSafeLoader", "BaseLoader"):
        ns[cls] = ClassValue(cls, (obj,), {}, "yaml")
    ns["YAMLError"] = ClassValue("YAMLError", (loader.builtins["Exception"],), {}, "yaml")
    ns["dump"] = ns["safe_dump"] = NoOp("yaml.dump")
    return _module("yaml", ns)
