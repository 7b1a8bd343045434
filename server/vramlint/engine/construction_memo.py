"""Repeated constructions, built once: `Block(64, 128)` made again with the same plain arguments
is a copy of an earlier one's result.

Building a model's classes is most of an analysis, and models repeat their blocks: torchvision's
23 model files construct classes of analysed source 6,311 times with plain arguments, 2,320
distinct (ResNet's bottlenecks, RegNet's and EfficientNet's `Conv2dNormActivation`s). Python
would run each `__init__` again; the answer is the same object each time when the construction
depends only on its arguments and on what cannot have changed, and changes nothing else.

A construction `C(*args, **kwargs)` of a class of analysed source (Protocol.instantiate) is
remembered, for the rest of one analysis (analysis/api.py starts each with an empty memo), when:
- its arguments are plain (`key`): None, bools, numbers, strings, tuples of them, classes,
  functions, modules, `functools.partial` of them, values a frontend marks immutable (a torch
  dtype); equal arguments are then the same inputs;
- the class has no metaclass of analysed source and no frontend `construct` rule, nothing observes
  instantiations (Lightning, Accelerate), and no forward is being traced;
- its run changed nothing outside the objects it made: no attribute of a class, a module or a
  function was set (`note_mutation`, which also drops every entry), no function it ran has a
  `global` or `nonlocal` statement, no object was called (a module's recorded calls are not
  copied), no Unknown was recorded, nothing was noted for the report or a frontend (data
  origins, files that failed to read, `Loader.frontend_state`'s tables: tokenised lengths);
- what it read from outside is inert and still bound the same on a repeat: the names that the
  functions it ran may read from their closures and module (their text, their own locals left
  out) and the module attributes it read hold modules, classes, functions or constants, and so
  does every class attribute it read (`Block.registry.append(...)` could change a list without
  setting an attribute);
- the object it made is a framework's object (an instance with frontend state: a torch module, a
  Keras layer) whose state says it was made at the call's place, and which copies exactly
  (`Protocol.strict_copy`: nothing mutable is shared).

A key's first construction only notes the key (most are never repeated); its second is
recorded, and a copy of its object kept as it stood when the construction returned (the caller
may change the object afterwards). A later one checks the bindings the recorded run read, gets a
copy of the kept object, made at its own call, and notes what that run noted for the editor's
reuse of unchanged classes (the names it read, whether it read files).

Not seen: hidden state of native functions (none of the torch stubs keep any that construction
reads), and the location of an Unknown inside the object that the recorded call's place made.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import libcst as cst

from vramlint.engine import name_reads
from vramlint.engine.values import (
    MISSING,
    ClassMethod,
    ClassValue,
    FunctionValue,
    Instance,
    LazyBinding,
    ModuleValue,
    NativeFunction,
    NTuple,
    Partial,
    Property,
    StaticMethod,
    Unknown,
)
from vramlint.engine.walk import child_nodes

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator

# Off: every construction runs (tests compare the two; benchmarks measure the difference).
enabled = True

_ATOMS = frozenset({int, float, complex, str, bytes, bool, type(None)})
# Objects nothing in the analysis changes without setting an attribute (which note_mutation sees).
_SHARED = frozenset({ModuleValue, ClassValue, FunctionValue, LazyBinding, StaticMethod, ClassMethod, Property})


def inert(v: Any) -> bool:
    """Whether `v` can be shared by a construction and its copies: it cannot change meanwhile
    without a set attribute (see above)."""
    t = type(v)
    if t in _ATOMS or t in _SHARED:
        return True
    if t is tuple or t is frozenset or t is NTuple:
        return all(inert(x) for x in v)
    if t is NativeFunction:
        return v.receiver is None  # not a method bound to a list or dict
    if t is Partial:
        return inert(v.func) and all(inert(x) for x in v.args) and all(inert(x) for x in v.kwargs.values())
    if isinstance(v, (int, float, complex, str, bytes, Unknown)):  # tagged numbers, torch.device
        return True
    return bool(getattr(t, "immutable", False))


def _key_of(v: Any) -> Any:
    """A hashable key equal for arguments that are the same input; raises KeyError otherwise."""
    t = type(v)
    if t in _ATOMS:
        if t is float:
            return (float, v.hex())  # -0.0 is not 0.0; nan is nan
        return (t, v)
    if t is tuple:
        return tuple(_key_of(x) for x in v)
    if t in _SHARED and t is not LazyBinding or (t is NativeFunction and v.receiver is None):
        return (id(v),)
    if t is Partial:
        return (Partial, _key_of(v.func), _key_of(v.args), tuple((k, _key_of(x)) for k, x in v.kwargs.items()))
    if t is NTuple:
        return (NTuple, id(v.cls), tuple(_key_of(x) for x in v))
    if isinstance(v, (int, float, str, bytes)):  # SourcedInt (its origin), torch.device
        extra = tuple(sorted(vars(v).items())) if hasattr(v, "__dict__") else ()
        num = v.hex() if isinstance(v, float) and not math.isnan(v) else v
        return (t, num, extra)
    if getattr(t, "immutable", False):
        return (id(v),)
    raise KeyError(t)


_SEEN: Any = object()  # a key met once: the next construction with it is remembered


class _Entry:
    __slots__ = ("obj", "relocate", "checks", "mutations", "files")

    def __init__(self, obj: Instance, relocate: bool, checks: list[tuple[dict[str, Any], str, Any]],
                 mutations: int, files: bool) -> None:
        self.obj = obj  # the object as its construction returned it (a copy, never handed out)
        self.relocate = relocate  # its frontend state's `ref` is where the call was
        self.checks = checks  # (namespace, name, value) each read: still bound the same on a repeat
        self.mutations = mutations
        self.files = files  # the construction read files or imported (noted again on a repeat)


class ConstructionMemo:
    """One analysis's repeated constructions (see the module's docstring)."""

    __slots__ = ("entries", "depth", "log", "impure", "mutations", "records")

    def __init__(self) -> None:
        self.entries: dict[Any, _Entry] = {}
        self.depth = 0  # constructions being recorded (nested: a block's conv inside the block)
        # While recording: the functions run (FunctionValue) and the bindings read (tuples),
        # for every recording under way (each keeps where its part starts).
        self.log: list[Any] = []
        self.impure = 0  # events that make every construction under way unrememberable
        self.mutations = 0  # attributes of classes, modules and functions set (entries dropped)
        self.records = 0  # Unknowns the evaluator recorded (Evaluator.record)

    def reset(self) -> None:
        self.entries.clear()
        self.log.clear()
        self.depth = 0

    # ------------------------------------------------------------------ events
    def note_mutation(self) -> None:
        """An attribute of a class, a module or a function was set: what any entry read may differ."""
        self.mutations += 1
        self.impure += 1
        if self.entries:
            self.entries.clear()

    def note_read(self, ns: dict[str, Any], name: str, value: Any) -> None:
        """A module attribute was read while recording (`nn.Conv2d`)."""
        self.log.append((ns, name, value))

    def note_class_attribute(self, value: Any) -> None:
        """A class attribute was read while recording: a list or dict there may change unseen."""
        if not inert(value):
            self.impure += 1

    # ------------------------------------------------------------------ constructions
    def key(self, cls: ClassValue, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not enabled:
            return None
        try:
            return (id(cls), tuple(_key_of(a) for a in args),
                    tuple((k, _key_of(v)) for k, v in kwargs.items()) if kwargs else ())
        except KeyError:
            return None

    def construct(self, ev: Evaluator, key: Any, make: Callable[[], Any]) -> Any:
        """`make()`'s result, or a copy of the recorded one's for this key (see above)."""
        entry = self.entries.get(key)
        if entry is None:
            # Most keys are met once (1,390 of torchvision's 2,320): the copy kept for a repeat
            # is made from the second construction, not for every first one.
            self.entries[key] = _SEEN
            return make()
        if entry is not _SEEN:
            obj = self._repeat(ev, entry)
            if obj is not None:
                return obj
        start, impure, records, files = len(self.log), self.impure, self.records, name_reads.file_reads
        noted = _noted(ev)
        ref = ev.current_ref
        self.depth += 1
        try:
            obj = make()
        finally:
            self.depth -= 1
            items = self.log[start:]
            if self.depth == 0:
                self.log.clear()  # (else kept: the constructions around this one read them too)
        if self.impure != impure or self.records != records or type(obj) is not Instance or noted != _noted(ev):
            return obj
        state = obj.state
        if state is None:
            return obj  # not a framework's module or layer: what else it is, nothing here knows
        relocate = getattr(state, "ref", None) is ref and ref is not None
        if not relocate and getattr(state, "ref", MISSING) is not MISSING:
            return obj  # made elsewhere than at this call (a `__new__` handing out another object)
        checks = _checks(items)
        if checks is None:
            return obj
        kept = ev.protocol.strict_copy(obj)
        if kept is not None:
            self.entries[key] = _Entry(kept, relocate, checks, self.mutations, name_reads.file_reads != files)
        return obj

    def _repeat(self, ev: Evaluator, entry: _Entry) -> Instance | None:
        if entry.mutations != self.mutations:
            return None
        for ns, name, value in entry.checks:
            if ns.get(name, MISSING) is not value:  # (a tracked namespace notes the read: reuse.py)
                return None
        obj = ev.protocol.strict_copy(entry.obj)
        if obj is None:
            return None
        if entry.relocate:
            obj.state.ref = ev.current_ref
        if entry.files:
            name_reads.note_file_read()
        if self.depth:
            self.log.extend(entry.checks)  # what the construction around this one depends on
        return obj  # type: ignore[no-any-return]


def _noted(ev: Evaluator) -> tuple[Any, ...]:
    """What the analysis has noted for its report and frontends: a construction that adds to it
    is not remembered (a repeat would not note it again)."""
    loader = ev.loader
    fronts = tuple((k, len(v) if isinstance(v, (list, dict, set)) else id(v)) for k, v in loader.frontend_state.items())
    return (ev.origins.mark(), len(loader.read_failures), len(loader.missing_files), fronts)


def _checks(items: list[Any]) -> list[tuple[dict[str, Any], str, Any]] | None:
    """The bindings a recording read, each inert and still bound so (None if any is not)."""
    checks: list[tuple[dict[str, Any], str, Any]] = []
    seen: set[tuple[int, str]] = set()
    funcs: set[int] = set()
    for item in items:
        if type(item) is tuple:
            ns, name, value = item
            k = (id(ns), name)
            if k in seen:
                continue
            seen.add(k)
            if dict.get(ns, name, MISSING) is not value or not inert(value):
                return None
            checks.append(item)
            continue
        f: FunctionValue = item
        if id(f) in funcs:
            continue
        funcs.add(id(f))
        names = _outer_names(f)
        if names is None:
            return None
        for d in (f.defaults, getattr(f, "kw_defaults", None) or {}):
            if not all(inert(v) for v in d.values()):
                return None
        spaces: list[dict[str, Any]] = []
        scope = f.closure
        while scope is not None:
            if not scope.is_class and scope.vars is not f.globals:
                spaces.append(scope.vars)
            scope = scope.parent
        spaces.append(f.globals)
        for name in names:
            for ns in spaces:
                # (dict's own get: an editor's namespace notes reads, and these are not all reads)
                value = dict.get(ns, name, MISSING)
                k = (id(ns), name)
                if k not in seen:
                    seen.add(k)
                    if value is not MISSING and not inert(value):
                        return None
                    checks.append((ns, name, value))
                if value is not MISSING:
                    break
    return checks


_NESTED_SCOPES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)


def _outer_names(f: FunctionValue) -> tuple[str, ...] | None:
    """The names `f`'s body may read from its closures, its module or the builtins: every name
    it mentions (nested functions' included) except its parameters and what its own scope binds;
    None when it has a `global` or `nonlocal` statement. Cached per node."""
    cache = f.module.node_cache
    key = ("memo-names", id(f.node))
    got = cache.get(key, MISSING)  # type: ignore[call-overload]
    if got is MISSING:
        got = cache[key] = _scan(f.node)  # type: ignore[index]
    return got  # type: ignore[no-any-return]


def _scan(node: cst.FunctionDef | cst.Lambda) -> tuple[str, ...] | None:
    mentioned: set[str] = set()
    bound: set[str] = set()
    params = node.params
    for p in (*params.posonly_params, *params.params, *params.kwonly_params):
        bound.add(p.name.value)
    for star in (params.star_arg, params.star_kwarg):
        if isinstance(star, cst.Param):
            bound.add(star.name.value)
    # (node, inside a nested function or class, inside a comprehension)
    stack: list[tuple[cst.CSTNode, bool, bool]] = [(node.body, False, False)]
    while stack:
        n, nested, comp = stack.pop()
        if isinstance(n, cst.Name):
            mentioned.add(n.value)
            continue
        if isinstance(n, (cst.Global, cst.Nonlocal)):
            return None
        if isinstance(n, (cst.Attribute, cst.Arg)):
            stack.append((n.value, nested, comp))  # `.attr` and `f(key=...)` name no variable
            continue
        if not nested:
            for target in _bound_here(n, comp):
                bound.update(_target_names(target))
        if isinstance(n, cst.AnnAssign):  # a variable's annotation is not evaluated
            stack.extend((c, nested, comp) for c in (n.target, n.value) if c is not None)
            continue
        inner_nested = nested or isinstance(n, _NESTED_SCOPES)
        inner_comp = comp or isinstance(n, _COMPREHENSIONS)
        stack.extend((c, inner_nested, inner_comp) for c in child_nodes(n))
    return tuple(sorted(mentioned - bound))


def _bound_here(n: cst.CSTNode, comp: bool) -> list[cst.CSTNode]:
    """What node `n`, in the function's own scope (in a comprehension: `comp`), binds there."""
    if isinstance(n, cst.NamedExpr):
        return [n.target]  # binds in the function even inside a comprehension
    if comp:
        return []
    if isinstance(n, (cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.For, cst.Del)):
        return [n.target]
    if isinstance(n, cst.AsName):
        return [n.name]  # `with ... as x`, `except E as x`, `import a as x`
    if isinstance(n, cst.ImportAlias) and n.asname is None:
        name: cst.BaseExpression = n.name
        while isinstance(name, cst.Attribute):  # `import a.b` binds `a`
            name = name.value
        return [name]
    if isinstance(n, (cst.FunctionDef, cst.ClassDef)):
        return [n.name]
    return []


def _target_names(target: cst.CSTNode) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [x for el in target.elements for x in _target_names(el.value)]
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return []  # a subscript or an attribute target binds no name
