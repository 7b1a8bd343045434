"""Python runtime features that library model code (transformers) relies on, checked against real
Python and torch: each case is a small project whose model size depends on the feature, analysed by
vramlint and also imported and built with real torch; the counts must agree, with nothing undecided.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

import vramlint

torch = pytest.importorskip("torch")

CASES: dict[str, dict[str, str]] = {
    # sys.modules[__name__] = <lazy module object>, resolved through its __getattr__ and importlib.
    "lazy_module": {
        "lazypkg_{id}/__init__.py": """
            import importlib
            import os
            import sys
            from itertools import chain
            from types import ModuleType

            class _Lazy(ModuleType):
                def __init__(self, name, module_file, structure):
                    super().__init__(name)
                    self._class_to_module = {v: k for k, vs in structure.items() for v in vs}
                    self.__all__ = list(structure) + list(chain(*structure.values()))
                    self.__path__ = [os.path.dirname(module_file)]

                def __getattr__(self, name):
                    if name in self._class_to_module:
                        module = importlib.import_module("." + self._class_to_module[name], self.__name__)
                        value = getattr(module, name)
                        setattr(self, name, value)
                        return value
                    raise AttributeError(name)

            sys.modules[__name__] = _Lazy(__name__, globals()["__file__"], {"layers": ["Block"]})
        """,
        "lazypkg_{id}/layers.py": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(8, 4)
        """,
        "model_{id}.py": """
            import importlib.util
            import sys
            from lazypkg_{id} import Block
            from torch import nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.block = Block()
                    # The lazy object is what sys.modules holds; find_spec asks the search path.
                    if "Block" in sys.modules["lazypkg_{id}"].__all__:
                        self.extra = nn.Linear(2, 2)
                    if importlib.util.find_spec("no_such_package_{id}") is None:
                        self.missing = nn.Linear(3, 3)

            model = Net()
        """,
    },
    # A package's `if TYPE_CHECKING:` imports (the branch vramlint takes, as type checkers do)
    # omit a name its lazy table has (diffusers 0.42.1's StableCascadeUNet): Python's lazy module
    # hands it out from `_import_structure`, and so must the analysis.
    "lazy_structure_beyond_type_checking": {
        "lazytc_{id}/__init__.py": """
            import importlib
            import os
            import sys
            from types import ModuleType
            from typing import TYPE_CHECKING

            _import_structure = {"layers": ["Block", "Head"]}

            if TYPE_CHECKING:
                from .layers import Head
            else:
                class _Lazy(ModuleType):
                    def __init__(self, name, module_file, structure):
                        super().__init__(name)
                        self._class_to_module = {v: k for k, vs in structure.items() for v in vs}
                        self.__path__ = [os.path.dirname(module_file)]

                    def __getattr__(self, name):
                        if name in self._class_to_module:
                            module = importlib.import_module("." + self._class_to_module[name], self.__name__)
                            return getattr(module, name)
                        raise AttributeError(name)

                sys.modules[__name__] = _Lazy(__name__, globals()["__file__"], _import_structure)
        """,
        "lazytc_{id}/layers.py": """
            from torch import nn

            class Block(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(8, 4)

            class Head(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(4, 2)
        """,
        "model_{id}.py": """
            import lazytc_{id}
            from torch import nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.block = lazytc_{id}.Block()
                    self.head = lazytc_{id}.Head()

            model = Net()
        """,
    },
    # __getattribute__/__setattr__ overrides reaching object's through super(), properties whose
    # getter raises AttributeError under getattr(..., default), implicit-classmethod __init_subclass__.
    "config_object": {
        "model_{id}.py": """
            from dataclasses import MISSING, dataclass, fields
            from typing import ClassVar
            from torch import nn

            class Base:
                attribute_map: ClassVar[dict] = {}
                registry: ClassVar[list] = []

                def __init_subclass__(cls, tag="none", **kwargs):
                    super().__init_subclass__(**kwargs)
                    cls.tag = tag
                    dataclass(cls)
                    Base.registry.append(cls.__name__)

                def __setattr__(self, key, value):
                    if key in super().__getattribute__("attribute_map"):
                        key = super().__getattribute__("attribute_map")[key]
                    super().__setattr__(key, value)

                def __getattribute__(self, key):
                    if key != "attribute_map" and key in super().__getattribute__("attribute_map"):
                        key = super().__getattribute__("attribute_map")[key]
                    return super().__getattribute__(key)

                @property
                def impl(self):
                    return self._impl_internal

            class Config(Base, tag="cfg"):
                attribute_map = {"hidden_size": "n_embd"}
                kind: ClassVar[str] = "config"
                n_embd: int = 12
                n_out: int = 5

            cfg = Config()
            cfg.hidden_size = 16
            defaults = {f.name: f.default for f in fields(Config) if f.default is not MISSING}

            class Net(nn.Module):
                def __init__(self, config):
                    super().__init__()
                    self.fc = nn.Linear(config.hidden_size, defaults["n_out"] * len(defaults))
                    if getattr(config, "impl", None) is None and config.tag == "cfg" and Base.registry == ["Config"]:
                        self.head = nn.Linear(config.n_embd, 1)

            model = Net(cfg)
        """,
    },
    # re over known strings, str() of a tuple of classes, Mapping mixins, dict views, itertools.cycle.
    "stdlib": {
        "model_{id}.py": """
            import re
            from collections.abc import MutableMapping
            from itertools import cycle
            from torch import nn

            VERSION = re.compile(r"^(?P<major>[0-9]+)\\.(?P<minor>[0-9]+)(?:\\+(?P<local>[a-z0-9]+))?$", re.VERBOSE)

            class Registry(MutableMapping):
                _global = {"a": 1, "b": 2}

                def __init__(self):
                    self._local = {}

                def __getitem__(self, key):
                    return self._local[key] if key in self._local else self._global[key]

                def __setitem__(self, key, value):
                    self._local[key] = value

                def __delitem__(self, key):
                    del self._local[key]

                def __iter__(self):
                    return iter({**self._global, **self._local})

                def __len__(self):
                    return len(self._global.keys() | self._local.keys())

            class Mixin:
                pass

            class Net(nn.Module, Mixin):
                def __init__(self):
                    super().__init__()
                    m = VERSION.match("2.13+cpu")
                    width = int(m.group("major")) * int(m["minor"]) if m and m.group("local") == "cpu" else 1
                    reg = Registry()
                    reg["c"] = 3
                    width += sum(reg.values()) + len(reg) + (10 if isinstance(reg, MutableMapping) else 0)
                    width += len(re.findall(r"\\d+", "a1b22c333")) + len(re.sub("[aeiou]", "", "layers"))
                    if "Mixin" in str(type(self).__bases__) and "b" in reg and reg.get("zz", 7) == 7:
                        width += 100
                    keys = {"x": 1, "y": 2}
                    width += len(keys.keys() | keys.values()) + len(list(zip(range(5), cycle([1, 2]))))
                    self.fc = nn.Linear(width, 2)

            model = Net()
        """,
    },
    # Flags set on parameters, torch API names absent from tensors, nn.Buffer registration, and
    # tying a weight with get_parameter + setattr.
    "tensors": {
        "model_{id}.py": """
            import torch
            from torch import nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.emb = nn.Embedding(10, 4)
                    self.head = nn.Linear(4, 10, bias=False)
                    self.ids = nn.Buffer(torch.arange(6).expand((1, -1)), persistent=False)
                    self.emb.weight._is_initialized = True
                    if getattr(self.emb.weight, "_is_initialized", False) and not hasattr(self.emb.weight, "num_embeddings"):
                        if not getattr(self.head.weight, "_is_initialized", False):
                            setattr(self.get_submodule("head"), "weight", self.get_parameter("emb.weight"))

            model = Net()
        """,
    },
    # Literals as Python decodes them: int prefixes and underscores, float exponents, strings with
    # escapes, prefixes, either quote and three of them (the engine decodes the plain ones itself).
    "literals": {
        "model_{id}.py": r'''
            from torch import nn

            SIZES = {"a": 0x1F, 'b': 0o17, "c\td": 0b1_01, """e""": 1_000, r"f\n": int(2.5e1), "\u00e9": int(.5e2),
                     u"g": int(1_0.0), """h "i" 'j'""": int(7E0), "k\\": 00, b"l".decode(): 3, 'm"': 1}

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    keys = ("a", "b", "c\x09d", "e", "f\\n", "\xe9", "g", 'h "i" \'j\'', "k\\", "l", "m\"")
                    self.layers = nn.ModuleList([nn.Linear(SIZES[k] + 1, 3) for k in keys])

            model = Net()
        ''',
    },
}


def _write(root: Path, files: dict[str, str], case_id: str) -> None:
    for rel, text in files.items():
        p = root / rel.format(id=case_id)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text.replace("{id}", case_id)).lstrip("\n"), encoding="utf-8")


def _torch_counts(root: Path, module: str) -> tuple[int, int]:
    sys.path.insert(0, str(root))
    try:
        model = importlib.import_module(module).model
    finally:
        sys.path.remove(str(root))
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())
    return params, buffers


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_real_python(name: str, tmp_path: Path) -> None:
    case_id = f"{name}_{tmp_path.name}".replace("-", "_")
    _write(tmp_path, CASES[name], case_id)
    target = tmp_path / f"model_{case_id}.py"
    result = vramlint.analyze_file(str(target), vramlint.Settings(extra_paths=(str(tmp_path),)))
    models = {m.name: m for m in result.models}
    assert "model" in models, (result.errors, list(models))
    m = models["model"]
    assert m.error is None, m.error
    assert not m.unknowns, [u.reason for u in m.unknowns]
    params, buffers = _torch_counts(tmp_path, f"model_{case_id}")
    assert (m.params.total, m.params.buffers) == (params, buffers)
