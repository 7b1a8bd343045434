"""Settings of an analysis and where each comes from.

One configuration drives the CLI and the editor: `[tool.vramlint]` in the nearest
`pyproject.toml` (or a `vramlint.toml`, whose top level is that table), with per-model tables
`[tool.vramlint.models.NAME]` (NAME a model's name or `path/file.py::Name`), an in-file directive
for one model (`# vramlint: batch-size=64 input-shape=3,224,224` on the line of the model or the
line above), and what the code itself shows (a call of the model, a DataLoader, the optimizer...).
A table named by a script's path (`[tool.vramlint.models."train.py"]`) may give its command line,
`args = [...]`; `--set key=value` gives one setting of it (docs/scripts.md).
Precedence, highest first: flags (the `Settings` fields, from the CLI or an API caller), the
in-file directive, the per-model table, `[tool.vramlint]`, the code, the defaults (the world size:
WORLD_SIZE in the configured `environment` before its default).
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(Exception):
    """Invalid configuration: the message names the file and the key."""


@dataclass(frozen=True)
class InputSpec:
    """One argument of `forward`: its shape per sample (the batch dimension excluded) and dtype."""

    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class Settings:
    extra_paths: tuple[str, ...] = ()  # like pyright's extraPaths: searched before installed packages
    models: tuple[str, ...] = ()  # only these models (class, variable or factory names)
    config_file: str | None = None
    # Flags: given explicitly (CLI, API); None / () = not given, the configuration or the code decide.
    inputs: tuple[InputSpec, ...] = ()  # when given, each model's forward is traced on them
    batch_size: int | None = None
    precision: str | None = None  # fp32 | amp-bf16 | amp-fp16 | bf16 | fp16
    optimizer: str | None = None  # see vramlint.memory.optimizers.OPTIMIZERS
    device: str | None = None  # the GPU: a name (vramlint.memory.devices) or a size ("24GiB")
    checkpointing: bool | None = None  # call the model's gradient_checkpointing_enable() first
    mode: str | None = None  # which peak must fit the GPU: train | infer
    context: int | None = None  # generation: prompt + generated tokens (the KV cache's length)
    world_size: int | None = None  # several GPUs: the ranks of the job (torchrun's nnodes x nproc_per_node)
    nodes: int | None = None  # the machines they run on (torchrun's --nnodes); divides world_size
    # The memory estimate (vramlint.memory): off unless asked for.
    memory: bool = False
    max_batch: bool = False  # also find the largest batch that fits the device (a second trace)
    # Limits of one file's analysis (docs/limits.md); `time-budget`, `step-budget`, `max-file-size`.
    time_budget: float = 60.0  # seconds of evaluation (wall clock; parsing excluded)
    step_budget: int = 50_000_000  # evaluation steps, library modules included
    max_file_size: int = 1024 * 1024  # bytes: a larger file is not read (parsing would take minutes)
    # The environment variables the analysed code sees in os.environ (`environment` table): the
    # code runs as `python train.py` would in a shell where only these are set.
    environment: tuple[tuple[str, str], ...] = ()
    # The torch release the analysed code sees (`torch.__version__`, importlib.metadata), whatever
    # is installed beside vramlint: code written for the training environment runs as it would there.
    torch_version: str = "2.13.0"
    # From the configuration file: [tool.vramlint] (setup keys as Settings field names) and the
    # per-model tables, validated (load_settings).
    config: Mapping[str, Any] = field(default_factory=dict, compare=False)
    # `--set key=value` (repeatable): the script's settings as if given on its command line (an
    # argparse option, a click/typer option, a hydra or OmegaConf key, dotted).
    overrides: tuple[tuple[str, str], ...] = ()
    model_config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False)


# ---------------------------------------------------------------------- the setup of one model
SETUP_KEYS = ("batch_size", "inputs", "precision", "optimizer", "device", "mode", "checkpointing",
              "max_layer_params", "context", "world_size", "nodes")
DEFAULTS: dict[str, Any] = {"batch_size": None, "inputs": (), "precision": "fp32", "optimizer": "adam",
                            "device": "H100", "mode": "train", "checkpointing": False, "max_layer_params": None,
                            "context": None, "world_size": 1, "nodes": 1}


@dataclass(frozen=True)
class Sourced:
    value: Any
    source: str  # "flag", "pyproject.toml [tool.vramlint]", "code: DataLoader(...) at line 3", "default"...


@dataclass(frozen=True)
class Setup:
    """The settings one model's estimate uses, each with where it came from."""

    values: Mapping[str, Sourced]

    def __getitem__(self, key: str) -> Any:
        return self.values[key].value

    def source(self, key: str) -> str:
        return self.values[key].source


def resolve_setup(settings: Settings, model: str, path: str, directive: Mapping[str, Sourced] | None = None,
                  code: Mapping[str, Sourced] | None = None) -> Setup:
    """Each setup key from the highest layer that has it: flag, directive, model table, tool
    table, code, the `environment` (WORLD_SIZE), default."""
    table, table_name = _model_table(settings, model, path)
    out = {key: _layer(settings, key, table, table_name, directive, code) for key in SETUP_KEYS}
    out["device"] = _full_device_name(out["device"])
    out["nodes"] = _nodes_dividing(out["world_size"], out["nodes"])
    return Setup(out)


def _layer(settings: Settings, key: str, table: Mapping[str, Any], table_name: str,
           directive: Mapping[str, Sourced] | None, code: Mapping[str, Sourced] | None) -> Sourced:
    """One setup key from the highest layer that has it."""
    flag = getattr(settings, key, None)
    if flag is not None and flag != ():
        return Sourced(flag, "flag")
    if directive and key in directive:
        return directive[key]
    if key in table:
        return Sourced(table[key], f"{_config_name(settings)} [{table_name}]")
    if key in settings.config:
        where = _config_name(settings)
        top = "" if where == "vramlint.toml" else " [tool.vramlint]"  # vramlint.toml's top level is the table
        return Sourced(settings.config[key], f"{where}{top}")
    if code and key in code:
        return code[key]
    world = _environment_world_size(settings) if key == "world_size" else None
    return Sourced(world, f"environment {WORLD_SIZE}") if world is not None else Sourced(DEFAULTS[key], "default")


def _config_name(settings: Settings) -> str:
    return Path(settings.config_file).name if settings.config_file else "configuration"


# torchrun's variable for the ranks of the job, read from the configured `environment` table (what
# the code sees in os.environ) below what the configuration and the code say: the launch's shell.
WORLD_SIZE = "WORLD_SIZE"


def _environment_world_size(settings: Settings) -> int | None:
    raw = dict(settings.environment).get(WORLD_SIZE, "").strip()
    return int(raw) if re.fullmatch(r"[1-9][0-9]*", raw) else None


def _nodes_dividing(world: Sourced, nodes: Sourced) -> Sourced:
    """The nodes, where they divide a world size that was given (a default world size of 1 says
    nothing: the code's plan may give it). The flags and the configuration file are checked
    together when loaded (`check_world`); a directive or the editor giving one of the two can
    still disagree with the other's layer: one node then, saying why, rather than no estimate."""
    if world.source != "default" and not _divides(nodes.value, world.value):
        return Sourced(1, f"default ({nodes.value} nodes from {nodes.source} do not divide the world size "
                          f"{world.value} from {world.source})")
    return nodes


def _divides(nodes: Any, world: Any) -> bool:
    """Whether `nodes` divides `world` (a value that is no positive count, which no layer here
    gives, divides nothing rather than raising)."""
    counts = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (nodes, world))
    return counts and world % nodes == 0


def check_world(settings: Settings) -> None:
    """ConfigError where the nodes do not divide the world size as the flags, `[tool.vramlint]`,
    a model's table and the `environment` give them together (6 ranks do not run on 4 machines
    of as many GPUs each)."""
    for name, table in (("", {}), *settings.model_config.items()):
        label = _models_table(Path(settings.config_file or "pyproject.toml"), name)[1:-1] if name else ""
        world = _layer(settings, "world_size", table, label, None, None)
        nodes = _layer(settings, "nodes", table, label, None, None)
        if world.source != "default" and not _divides(nodes.value, world.value):
            where = f"{settings.config_file}: " if settings.config_file else ""
            raise ConfigError(f"{where}`nodes` = {nodes.value} ({nodes.source}) does not divide `world-size` = "
                              f"{world.value} ({world.source}): each node runs as many ranks")


def _full_device_name(device: Sourced) -> Sourced:
    """The GPU by its full name (`h100` -> `H100-80GB`), whether or not the model gets traced."""
    from vramlint.memory.devices import device_named

    found = device_named(device.value) if isinstance(device.value, str) else None
    return Sourced(found.name, device.source) if found is not None else device


def _model_table(settings: Settings, model: str, path: str) -> tuple[Mapping[str, Any], str]:
    for name, table in settings.model_config.items():
        file, sep, cls = name.rpartition("::")
        if (not sep and name == model) or (sep and cls == model and _same_file(file, path, settings)):
            prefix = "" if settings.config_file and Path(settings.config_file).name == "vramlint.toml" \
                else "tool.vramlint."
            return table, f"{prefix}models.{_quote(name)}"
    return {}, ""


def _quote(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f'"{name}"'


def _same_file(file: str, path: str, settings: Settings) -> bool:
    base = Path(settings.config_file).parent if settings.config_file else Path.cwd()
    try:
        return (base / file).resolve() == Path(path).resolve()
    except OSError:
        return False


def script_args(settings: Settings, path: str) -> tuple[tuple[str, ...], str] | None:
    """The command line `args = [...]` of the per-model table named by the script's path (relative
    to the configuration's folder: `[tool.vramlint.models."scripts/train.py"]`), and where it is."""
    for name, table in settings.model_config.items():
        if "args" in table and "::" not in name and name.endswith(".py") and _same_file(name, path, settings):
            where = Path(settings.config_file).name if settings.config_file else "configuration"
            prefix = "" if where == "vramlint.toml" else "tool.vramlint."
            return tuple(table["args"]), f"args in {where} [{prefix}models.{_quote(name)}]"
    return None


def parse_override(text: str) -> tuple[str, str]:
    """`--set key=value`: (key, value); ValueError says what is expected."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or any(c.isspace() for c in key.strip()):
        raise ValueError(f"expected KEY=VALUE (e.g. batch_size=256 or train.batch_size=256), got {text!r}")
    return key.strip(), value


# ---------------------------------------------------------------------- validation
def parse_device(v: Any) -> str:
    from vramlint.memory.devices import device_named

    device = device_named(v) if isinstance(v, str) else None
    if device is not None and device.memory > 0:
        return v
    from vramlint.memory.devices import DEVICES

    if device is not None:
        raise ValueError(f"GPU {v!r} has no memory: give a positive size such as 24GiB")
    names = ", ".join(d.name for d in DEVICES.values())
    raise ValueError(f"unknown GPU {v!r} (known: {names}; or a size such as 24GiB)")


def _choice(options: Any) -> Any:
    def check(v: Any) -> Any:
        if not isinstance(v, str) or v not in options:
            raise ValueError(f"expected one of {', '.join(sorted(options))}, got {v!r}")
        return v

    return check


def _positive_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"expected a positive integer, got {v!r}")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {v!r}")
    return v


def parse_dims(spec: str) -> tuple[int, ...]:
    """A per-sample shape as the flag and the directive spell it, `3,224,224` or `3x224x224`
    (empty: one number per sample); ValueError says what is wrong. Strict: `3,x` is no `3`."""
    parts = [p.strip() for p in re.split(r"[,x]", spec)] if spec.strip() else []
    if any(re.fullmatch(r"-\d+", p) for p in parts):
        raise ValueError("dimensions must be non-negative")
    if not all(p.isdigit() and p.isascii() for p in parts):
        raise ValueError("expected comma-separated integers like 3,224,224")
    return tuple(int(p) for p in parts)


DTYPES = {"float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"}


def _inputs(v: Any) -> tuple[InputSpec, ...]:
    """inputs = [{ shape = [3, 224, 224], dtype = "float32" }, ...] (per sample, batch excluded)."""
    if not isinstance(v, list):
        raise ValueError("expected a list of tables like { shape = [3, 224, 224], dtype = \"float32\" }")
    out = []
    for item in v:
        if not isinstance(item, dict) or set(item) - {"shape", "dtype"} or "shape" not in item:
            raise ValueError("each input is a table with `shape` (and optionally `dtype`)")
        shape = item["shape"]
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                   for d in shape):
            raise ValueError(f"`shape` must be a list of non-negative integers, got {shape!r}")
        dtype = item.get("dtype", "float32")
        if dtype not in DTYPES:
            raise ValueError(f"`dtype` must be one of {', '.join(sorted(DTYPES))}, got {dtype!r}")
        out.append(InputSpec(tuple(shape), dtype))
    return tuple(out)


def _validators() -> dict[str, Any]:
    from vramlint.memory.estimate import PRECISIONS
    from vramlint.memory.optimizers import OPTIMIZERS

    return {
        "batch-size": ("batch_size", _positive_int),
        "inputs": ("inputs", _inputs),
        "precision": ("precision", _choice(PRECISIONS)),
        "optimizer": ("optimizer", _choice(OPTIMIZERS)),
        "gpu": ("device", parse_device),
        "mode": ("mode", _choice({"train", "infer"})),
        "checkpointing": ("checkpointing", _bool),
        "max-layer-params": ("max_layer_params", _positive_int),
        "context": ("context", _positive_int),
        "world-size": ("world_size", _positive_int),
        "nodes": ("nodes", _positive_int),
    }


GLOBAL_KEYS = {"extra-paths", "fail-on", "models", "time-budget", "step-budget", "max-file-size", "environment",
               "torch-version", "cache-dir", "output-format"}
FAIL_ON = ("error", "warning", "info", "never")


def setup_key(key: str) -> str | None:
    """The Settings field of a configuration key (`batch-size` -> `batch_size`)."""
    entry = _validators().get(key)
    return entry[0] if entry else None


def validate_setup_value(key: str, value: Any) -> Any:
    """A configuration or directive value, checked; ValueError says what is expected."""
    return _validators()[key][1](value)


# ---------------------------------------------------------------------- the files
def find_config(start: Path) -> Path | None:
    """The nearest pyproject.toml with a [tool.vramlint] table, or vramlint.toml, upwards."""
    d = start if start.is_dir() else start.parent
    for p in (d, *d.parents):
        own = p / "vramlint.toml"
        if own.is_file():
            return own
        candidate = p / "pyproject.toml"
        if candidate.is_file():
            tool = _read_toml(candidate).get("tool")
            if isinstance(tool, dict) and "vramlint" in tool:
                return candidate
    return None


def load_settings(start: Path, base: Settings | None = None, config: Path | None = None) -> Settings:
    """Settings from the configuration file (`config`, else the nearest one above `start`),
    under `base`'s flags."""
    base = base or Settings()
    path = config if config is not None else find_config(start.resolve())
    if path is None:
        check_world(base)
        return base
    if not path.is_file():
        raise ConfigError(f"{path}: no such configuration file")
    table = read_tool_table(path)
    extra = _string_list(table, "extra-paths", path)
    resolved = tuple(str((path.parent / p).resolve()) for p in extra)
    setup, models = _setup_table(table, path)
    loaded = replace(base, extra_paths=base.extra_paths + resolved, config_file=str(path), config=setup,
                     model_config=models, **_limits(table, path), **_environment(table, path))
    check_world(loaded)
    return loaded



def _environment(table: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """`environment = { NAME = "value" }`: strings only, as os.environ holds; `torch-version`."""
    out: dict[str, Any] = {}
    if "torch-version" in table:
        v = table["torch-version"]
        if not isinstance(v, str) or not re.fullmatch(r"[0-9]+\.[0-9]+(\.[0-9]+)?", v):
            raise ConfigError(f'{path}: `torch-version` in {_where(path)}: expected a release like "2.5.1", got {v!r}')
        out["torch_version"] = v
    if "environment" not in table:
        return out
    env = table["environment"]
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise ConfigError(f"{path}: `environment` in {_where(path)}: expected a table of strings "
                          f'(environment = {{ NAME = "value" }}), got {env!r}')
    if WORLD_SIZE in env and not re.fullmatch(r"[1-9][0-9]*", env[WORLD_SIZE].strip()):
        raise ConfigError(f"{path}: `environment` {WORLD_SIZE} in {_where(path)}: expected a positive integer "
                          f"(the job's ranks), got {env[WORLD_SIZE]!r}")
    return {**out, "environment": tuple(sorted(env.items()))}


def _limits(table: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """`time-budget` (seconds), `step-budget`, `max-file-size` (bytes): the Settings fields given."""
    out: dict[str, Any] = {}
    for key, check in (("time-budget", _positive_number), ("step-budget", _positive_int),
                       ("max-file-size", _positive_int)):
        if key in table:
            try:
                out[key.replace("-", "_")] = check(table[key])
            except ValueError as err:
                raise ConfigError(f"{path}: `{key}` in {_where(path)}: {err}") from None
    return out


def _positive_number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or v == float("inf"):
        raise ValueError(f"expected a positive number, got {v!r}")
    return float(v)


def fail_on_of(settings: Settings) -> str | None:
    """`fail-on` from the configuration file, if any."""
    return check_option(settings, "fail-on")


def check_option(settings: Settings, key: str) -> str | None:
    """One of `check`'s own keys (`fail-on`, `output-format`: no analysis reads them) from the
    configuration file, if any."""
    if settings.config_file is None:
        return None
    value = read_tool_table(Path(settings.config_file)).get(key)
    return value if isinstance(value, str) else None


def _where(path: Path) -> str:
    """The configuration's top table as the file spells it: vramlint.toml's top level is it."""
    return "vramlint.toml" if path.name == "vramlint.toml" else "[tool.vramlint]"


def _models_table(path: Path, name: str | None = None) -> str:
    prefix = "models" if path.name == "vramlint.toml" else "tool.vramlint.models"
    return f"[{prefix}]" if name is None else f"[{prefix}.{_quote(name)}]"


def _setup_table(table: Mapping[str, Any], path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    setup: dict[str, Any] = {}
    validators = _validators()
    where = _where(path)
    for key, value in table.items():
        if key in GLOBAL_KEYS:
            continue
        attr = validators[key][0]
        setup[attr] = _checked(path, where, key, value)
    models: dict[str, dict[str, Any]] = {}
    raw = table.get("models", {})
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {_models_table(path)} must be a table of tables, one per model")
    for name, sub in raw.items():
        sub_where = _models_table(path, name)
        if not isinstance(sub, dict):
            raise ConfigError(f"{path}: {sub_where} must be a table")
        models[name] = {}
        for key, value in sub.items():
            # A checkpoint's config.json (frontends/transformers/pretrained.py), an adapter's
            # adapter_config.json (frontends/peft/pretrained.py).
            if key in ("config", "adapter_config"):
                models[name][key] = _config_json(path, sub_where, value, key)
                continue
            if key == "args":  # a script's command line (`[tool.vramlint.models."train.py"]`)
                if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                    raise ConfigError(f'{path}: `args` in {sub_where}: expected a list of strings like '
                                      f'["--batch-size", "256"], got {value!r}')
                models[name]["args"] = tuple(value)
                continue
            if key not in validators:
                raise ConfigError(f"{path}: unknown key `{key}` in {sub_where} "
                                  f"(known: {', '.join([*sorted(validators), 'adapter_config', 'args', 'config'])})")
            models[name][validators[key][0]] = _checked(path, sub_where, key, value)
    fail_on = table.get("fail-on")
    if fail_on is not None and fail_on not in FAIL_ON:
        raise ConfigError(f"{path}: `fail-on` in {where}: expected one of {', '.join(FAIL_ON)}, got {fail_on!r}")
    return setup, models


def _config_json(path: Path, where: str, value: Any, key: str = "config") -> str:
    """`config = "path/to/config.json"`: a string, relative to the configuration file's folder."""
    if not isinstance(value, str) or not value:
        article = "an" if key.startswith("a") else "a"
        raise ConfigError(f"{path}: `{key}` in {where}: expected the path of {article} {key}.json, got {value!r}")
    return str((path.parent / Path(value).expanduser()).resolve())


def _checked(path: Path, where: str, key: str, value: Any) -> Any:
    try:
        return validate_setup_value(key, value)
    except ValueError as err:
        raise ConfigError(f"{path}: `{key}` in {where}: {err}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None


def read_tool_table(path: Path) -> dict[str, Any]:
    data = _read_toml(path)
    where = _where(path)
    if path.name == "vramlint.toml":
        table: Any = data
    else:
        tool = data.get("tool", {})
        if not isinstance(tool, dict):
            raise ConfigError(f"{path}: `tool` must be a table ([tool.vramlint])")
        table = tool.get("vramlint", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {where} must be a table")
    known = GLOBAL_KEYS | set(_validators())
    for key in table:
        if key not in known:
            raise ConfigError(f"{path}: unknown key `{key}` in {where} (known: {', '.join(sorted(known))})")
    return table


def _string_list(table: Mapping[str, Any], key: str, path: Path) -> list[str]:
    v = table.get(key, [])
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{path}: `{key}` in {_where(path)} must be a list of strings")
    return v


# ---------------------------------------------------------------------- in-file directives
# A directive's text ends where the comment does or where another comment starts after it
# (`# vramlint: batch-size=4  # vramlint: ignore[VL301]`, `# vramlint: batch-size=4  # a reason`).
DIRECTIVE = re.compile(r"#\s*vramlint:\s*([^#]*)")
SUPPRESSION = re.compile(r"(file-ignore|ignore)(?![\w-])")  # what follows `# vramlint:` in a suppression


@dataclass(frozen=True)
class Directive:
    line: int  # 1-based line of the comment
    values: Mapping[str, Any]  # Settings field names


@functools.lru_cache(maxsize=16)  # asked once per file and once per model of it
def parse_directives(text: str, path: str) -> tuple[list[Directive], list[tuple[int, str]]]:
    """`# vramlint: batch-size=64 input-shape=3,224,224 input-dtype=float32 precision=amp-bf16`:
    the directives of a file, and the problems (line, message) of malformed ones."""
    found: list[Directive] = []
    problems: list[tuple[int, str]] = []
    if "vramlint:" not in text:
        return found, problems
    for i, line in enumerate(text.splitlines(), 1):
        items = [item for m in DIRECTIVE.finditer(line)
                 if not SUPPRESSION.match(m.group(1))  # `# vramlint: ignore[...]`: analysis/suppressions.py
                 for item in m.group(1).split()]
        if not items:
            continue
        values: dict[str, Any] = {}
        shapes: list[tuple[int, ...]] = []
        dtypes: list[str] = []
        for item in items:
            key, sep, raw = item.partition("=")
            try:
                if not sep:
                    raise ValueError("expected key=value")
                if key == "input-shape":
                    shapes.append(parse_dims(raw))
                    dtypes.append("float32")
                elif key == "input-dtype":  # the dtype of the input-shape before it, as for the flags
                    if raw not in DTYPES:
                        raise ValueError(f"expected one of {', '.join(sorted(DTYPES))}")
                    if not shapes:
                        raise ValueError("give it after the input-shape it applies to")
                    dtypes[-1] = raw
                elif key in ("inputs",) or setup_key(key) is None:
                    raise ValueError(f"unknown key (known: {', '.join(sorted(_directive_keys()))})")
                else:
                    values[setup_key(key) or key] = validate_setup_value(key, _literal(raw))
            except ValueError as err:
                problems.append((i, f"vramlint directive `{item}`: {err}"))
        if shapes:
            values["inputs"] = tuple(InputSpec(s, d) for s, d in zip(shapes, dtypes))
        if values:
            found.append(Directive(i, values))
    return found, problems


def _directive_keys() -> set[str]:
    return (set(_validators()) - {"inputs"}) | {"input-shape", "input-dtype"}


def _literal(raw: str) -> Any:
    if raw in ("true", "false"):
        return raw == "true"
    if re.fullmatch(r"\d+", raw):
        return int(raw)
    return raw


__all__ = ["Settings", "ConfigError", "load_settings", "InputSpec", "Setup", "Sourced", "resolve_setup",
           "parse_directives", "field"]
