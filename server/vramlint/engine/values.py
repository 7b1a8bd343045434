"""Abstract values of the evaluator.

Plain Python data (int, float, str, bool, None, tuple, list, dict, set, range, slice) is
represented by the real Python objects: arithmetic on known numbers is exact and cheap.
Everything the evaluator must model itself (functions, classes, instances, modules, values it
cannot determine) is one of the classes below.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import libcst as cst

    from vramlint.engine.source import SourceModule


@dataclass(frozen=True)
class Location:
    """A 1-based line, 0-based column range in a file (LSP-style columns)."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column + 1}"


class SourceRef:
    """A node of a parsed module; its position is computed only when someone asks."""

    __slots__ = ("module", "node")

    def __init__(self, module: SourceModule, node: cst.CSTNode) -> None:
        self.module = module
        self.node = node

    @property
    def location(self) -> Location:
        return self.module.location_of(self.node)

    @property
    def statement_location(self) -> Location:
        """The statement holding this node: cheaper than `location` (see SourceModule)."""
        return self.module.statement_location(self.node) or self.location


class UnknownValueError(Exception):
    """Raised when Python code in a rule needs the truth value of an Unknown."""

    def __init__(self, unknown: Unknown) -> None:
        super().__init__(unknown.reason)
        self.unknown = unknown


def _propagate(self: Unknown, *_: Any) -> Unknown:
    return self


class Unknown:
    """A value the evaluator could not determine, with the reason and where it arose.

    Operations on an Unknown give the same Unknown, so the first cause travels to wherever the
    value ends up (a layer's parameter count, a condition). Asking for its truth value raises
    UnknownValueError, which callers turn into a located "could not decide" finding.
    """

    __slots__ = ("reason", "ref")

    def __init__(self, reason: str, ref: SourceRef | None = None) -> None:
        self.reason = reason
        self.ref = ref

    @property
    def location(self) -> Location | None:
        return self.ref.location if self.ref is not None else None

    def __repr__(self) -> str:
        return f"Unknown({self.reason!r})"

    def __bool__(self) -> bool:
        raise UnknownValueError(self)

    def __index__(self) -> int:
        raise UnknownValueError(self)

    def __int__(self) -> int:
        raise UnknownValueError(self)

    def __iter__(self):  # type: ignore[no-untyped-def]
        raise UnknownValueError(self)

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _propagate
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _propagate
    __mod__ = __rmod__ = __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = _propagate
    __lshift__ = __rlshift__ = __rshift__ = __rrshift__ = __invert__ = _propagate
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = _propagate
    __lt__ = __le__ = __gt__ = __ge__ = _propagate  # type: ignore[assignment]

    def __hash__(self) -> int:
        return id(self)


class UnknownData(Unknown):
    """An Unknown that is known not to be a module: the result of a comparison, `int()`, `bool()`,
    `str()`, `len()`, or a name that is one of such values on every path of an undecided `if`.

    Storing it on a module (`self.fused_attn = use_fused_attn()`, timm's attention flag read from
    an environment variable) cannot hide a submodule, so the parameter count stays exact."""

    __slots__ = ()


def as_data(u: Unknown) -> UnknownData:
    return u if isinstance(u, UnknownData) else UnknownData(u.reason, u.ref)


def is_data_value(v: Any) -> bool:
    """A value that can never hold a module or a parameter (for merging undecided branches)."""
    if isinstance(v, (UnknownData, bool, int, float, complex, str, bytes, type(None))):
        return True
    if isinstance(v, (tuple, frozenset)):
        return all(is_data_value(x) for x in v)
    return False


class Value:
    """Base class of the evaluator's own objects."""

    __slots__ = ()
    type_name = "object"


class FunctionValue(Value):
    """A `def` or `lambda` of analysed source, with its defaults evaluated at definition."""

    __slots__ = (
        "node",
        "name",
        "qualname",
        "module",
        "closure",
        "defaults",
        "kw_defaults",
        "owner",
        "is_generator",
        "attrs",
        "globals",
        "wrapped",
        "cached",
    )
    type_name = "function"

    def __init__(
        self,
        node: cst.FunctionDef | cst.Lambda,
        name: str,
        qualname: str,
        module: SourceModule,
        closure: Any,
        defaults: dict[str, Any],
        globals: dict[str, Any],
    ) -> None:
        self.node = node
        self.name = name
        self.qualname = qualname
        self.module = module
        self.closure = closure
        self.defaults = defaults
        self.owner: ClassValue | None = None
        self.is_generator: bool | None = None  # computed on first call
        self.globals = globals
        self.attrs: dict[str, Any] = {}
        # Under a decorator taken as the identity: the real callable may be a wrapper that accepts
        # (and renames) other arguments, so calls are not checked against this signature.
        self.wrapped = False
        # Under `functools.lru_cache` / `cache`: a call with the same plain arguments gives the first
        # call's result (Evaluator.memos), as Python's cache does, without running it again.
        self.cached = False

    def __repr__(self) -> str:
        return f"<function {self.qualname}>"


NativeImpl = Callable[..., Any]
# The positional and keyword arguments a native implementation receives.
Args = tuple[Any, ...]
Kwargs = dict[str, Any]


class Positional(tuple):  # type: ignore[type-arg]
    """A native call's positional arguments for rules that read them by index (`a[0]`, `a[1]`):
    one that is missing is the TypeError Python raises (`x.transpose(1, )`), not an IndexError
    out of vramlint."""

    ev: Any
    name: str

    def __new__(cls, ev: Any, name: str, items: tuple[Any, ...]) -> Positional:
        obj = super().__new__(cls, items)
        obj.ev, obj.name = ev, name
        return obj

    def __getitem__(self, i: Any) -> Any:
        try:
            return tuple.__getitem__(self, i)
        except IndexError:
            raise self.ev.raise_error("TypeError", f"{self.name}() missing a required argument") from None


class NativeFunction(Value):
    """A function implemented by vramlint (builtins, torch functions, rule functions).

    `impl(ev, args, kwargs)` receives the evaluator, positional and keyword arguments.
    """

    __slots__ = ("name", "impl", "decorator", "receiver")
    type_name = "builtin_function_or_method"

    def __init__(self, name: str, impl: NativeImpl, decorator: NativeImpl | None = None,
                 receiver: Any = None) -> None:
        self.name = name
        self.impl = impl
        # When used as `@name` (no call), how it transforms the decorated object.
        self.decorator = decorator
        # The object a method is bound to (`t` of `t.view`), for the memory model's recorder.
        self.receiver = receiver

    def __repr__(self) -> str:
        return f"<native {self.name}>"


class StateFreeFunction(NativeFunction):
    """A native function whose call changes nothing the analysis tracks (freeing an allocator's
    cache, waiting for a device): a call of it that an undecided condition skips decides nothing."""

    __slots__ = ()


class ClassValue(Value):
    """A class of analysed source, or a native one (torch.nn layers, builtin exceptions)."""

    __slots__ = ("name", "qualname", "module_name", "bases", "ns", "mro", "ref", "flags", "native", "subclasses",
                 "hooks", "__weakref__")
    type_name = "type"

    def __init__(
        self,
        name: str,
        bases: tuple[ClassValue, ...],
        ns: dict[str, Any],
        module_name: str,
        qualname: str | None = None,
        ref: SourceRef | None = None,
        native: Any = None,
    ) -> None:
        self.name = name
        self.qualname = qualname or name
        self.module_name = module_name
        self.bases = bases
        self.ns = ns
        self.ref = ref
        self.flags: set[str] = set()
        # Native payload (e.g. a torch layer spec, or the Python type of a builtin class).
        self.native = native
        self.mro = _c3_mro(self)
        # Direct subclasses, in the order they were made (`cls.__subclasses__()`), held weakly as
        # CPython does: a class of an edited file that was re-analysed goes away.
        self.subclasses: list[weakref.ref[ClassValue]] = []
        # The native hooks found along the MRO, by name (protocol.Protocol.hook's cache).
        self.hooks: dict[str, Any] | None = None
        for base in bases:
            if len(base.subclasses) >= 256 and len(base.subclasses) % 256 == 0:  # `object` in a long session
                base.subclasses[:] = [r for r in base.subclasses if r() is not None]
            base.subclasses.append(weakref.ref(self))

    def lookup(self, name: str) -> tuple[Any, ClassValue | None]:
        for klass in self.mro:
            if name in klass.ns:
                return klass.ns[name], klass
        return _MISSING, None

    def is_subclass_of(self, other: ClassValue) -> bool:
        return other in self.mro

    def __repr__(self) -> str:
        return f"<class {self.module_name}.{self.qualname}>"


def _c3_mro(cls: ClassValue) -> list[ClassValue]:
    seqs = [list(b.mro) for b in cls.bases] + [list(cls.bases)]
    result = [cls]
    while True:
        seqs = [s for s in seqs if s]
        if not seqs:
            return result
        for seq in seqs:
            head = seq[0]
            if not any(head in s[1:] for s in seqs):
                break
        else:  # inconsistent hierarchy: fall back to depth-first order
            for seq in seqs:
                for k in seq:
                    if k not in result:
                        result.append(k)
            return result
        result.append(head)
        for s in seqs:
            if s and s[0] is head:
                del s[0]


class Instance(Value):
    """An object of a ClassValue. `state` holds frontend data (torch module registries)."""

    __slots__ = ("cls", "attrs", "state", "__weakref__")

    def __init__(self, cls: ClassValue) -> None:
        self.cls = cls
        self.attrs: dict[str, Any] = {}
        self.state: Any = None

    def __repr__(self) -> str:
        return f"<{self.cls.name} instance>"


class BoundMethod(Value):
    __slots__ = ("self_value", "func")
    type_name = "method"

    def __init__(self, self_value: Any, func: Any) -> None:
        self.self_value = self_value
        self.func = func


class StaticMethod(Value):
    __slots__ = ("func",)

    def __init__(self, func: Any) -> None:
        self.func = func


class ClassMethod(Value):
    __slots__ = ("func",)

    def __init__(self, func: Any) -> None:
        self.func = func


class Property(Value):
    __slots__ = ("fget", "fset")

    def __init__(self, fget: Any, fset: Any = None) -> None:
        self.fget = fget
        self.fset = fset

    def get_attribute(self, ev: Any, name: str) -> Any:
        # `@dim.setter` must make a new property: without it the decorator was taken as the
        # identity, the setter function replaced the property and assignments bypassed it.
        if name in ("setter", "getter", "deleter"):
            def make(f: Any) -> Property:
                if name == "setter":
                    return Property(self.fget, f)
                return Property(f, self.fset) if name == "getter" else self

            return NativeFunction(f"property.{name}", lambda ev, a, k: make(a[0]), lambda ev, v, a, k: make(v))
        if name in ("fget", "fset"):
            return getattr(self, name)
        return MISSING


class Partial(Value):
    """functools.partial(func, *args, **kwargs)."""

    __slots__ = ("func", "args", "kwargs")
    type_name = "functools.partial"

    def __init__(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs


class SuperValue(Value):
    __slots__ = ("start", "obj")

    def __init__(self, start: ClassValue, obj: Any) -> None:
        self.start = start
        self.obj = obj


class ModuleValue(Value):
    """A Python module: analysed source or a native stub (torch, math...)."""

    __slots__ = ("name", "ns", "source", "getattr_hook", "package_path")
    type_name = "module"

    def __init__(
        self,
        name: str,
        ns: dict[str, Any] | None = None,
        source: SourceModule | None = None,
        getattr_hook: Callable[[str], Any] | None = None,
    ) -> None:
        self.name = name
        self.ns: dict[str, Any] = ns if ns is not None else {}
        self.source = source
        # For native stubs: computes attributes that are not in ns (e.g. torch.nn.<Layer>).
        self.getattr_hook = getattr_hook
        self.package_path: Any = None

    def __repr__(self) -> str:
        return f"<module {self.name}>"


class ExceptionValue(Value):
    """An exception object raised by analysed code."""

    __slots__ = ("cls", "args", "attrs")

    def __init__(self, cls: ClassValue, args: tuple[Any, ...]) -> None:
        self.cls = cls
        self.args = args
        self.attrs: dict[str, Any] = {}  # set by a user exception's __init__ (`self.width = w`)


@dataclass
class FieldSpec(Value):
    """dataclasses.field(...)"""

    default: Any = None
    default_factory: Any = None
    has_default: bool = False
    init: bool = True
    metadata: Any = None  # field(metadata=...): a mapping, read by library code (peft's LoRA variants)


class NTuple(tuple):  # type: ignore[type-arg]
    """A NamedTuple instance: a real tuple plus field names."""

    cls: ClassValue

    def __new__(cls, items: tuple[Any, ...], klass: ClassValue) -> NTuple:
        obj = super().__new__(cls, items)
        obj.cls = klass
        return obj


@dataclass
class LazyBinding:
    """A module-level import binding resolved on first use (keeps unused imports free)."""

    resolve: Callable[[], Any]
    value: Any = None
    done: bool = False
    in_progress: bool = False


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()
MISSING = _MISSING


class Deque(list):  # type: ignore[type-arg]
    """`collections.deque`, as a list with deque's own methods (what analysed code calls on it:
    timm keeps each architecture's pretrained tags in one)."""

    def appendleft(self, x: Any) -> None:
        self.insert(0, x)

    def extendleft(self, xs: Any) -> None:
        for x in xs:
            self.insert(0, x)

    def popleft(self) -> Any:
        return self.pop(0)

    def rotate(self, n: int = 1) -> None:
        if self:
            n %= len(self)
            self[:] = self[-n:] + self[:-n]


class EvalDefaultDict(dict):  # type: ignore[type-arg]
    """`collections.defaultdict` whose factory is analysed code (a class, a function, a lambda):
    a missing key is filled by calling the factory through the evaluator (protocol.getitem)."""

    factory: Any = None


class SubclassedDict(dict):  # type: ignore[type-arg]
    """An instance of a class of the analysed code that subclasses dict/OrderedDict: a dict that
    remembers its class, so that the class's own `__getitem__` and methods apply to it."""

    cls: Any = None
    attrs: dict[str, Any] | None = None  # its instance attributes
