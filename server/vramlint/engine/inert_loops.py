"""Weight-initialisation loops, recognised and not run.

Nearly every model's `__init__` ends with

    for m in self.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.Linear):
            init_range = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -init_range, init_range)

which fills values, and values are what vramlint does not follow: `torch.nn.init`'s functions are
no-ops of its torch (frontends/torch/stubs.py), so the loop changes nothing it computes. Run, it
was a sixth of building torchvision's models (a few interpreted calls per module, for every module
of every model). Such a loop is skipped, its variable bound to the last module as Python leaves
it; so are the calls of `module.apply(fn)` whose `fn` has such a body (nanoGPT's
`self.apply(self._init_weights)`).

A loop is skipped only when all of this holds; anything else runs as before:
- `for NAME in OBJ.modules():` with no `else`, giving modules;
- its body (`if`/`elif`/`else`, `pass`) calls only `torch.nn.init`'s functions, `math`'s and a few
  builtins (isinstance, hasattr, len, min, max, abs, round, float, int), as resolved when the loop
  starts, never a method;
- what it assigns is local names that the function reads nowhere else;
- what it reads is names, constants, operators, and attributes: of modules (`nn.Conv2d`), or of
  the loop's module (`m.weight`), and then only beyond `weight` or `bias` (`m.weight.data`);
  the module itself only as `isinstance`'s or `hasattr`'s first argument (`len(m)` or `m == x`
  may run its class's dunders);
- no class of those modules defines `__getattr__` or `__getattribute__` in analysed source, or
  makes a name the body reads on the module a property or another descriptor, and no module holds
  an object of its own (not a module, tensor or number) under such a name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import libcst as cst

from vramlint.engine.values import (
    MISSING,
    BoundMethod,
    ClassValue,
    FunctionValue,
    Instance,
    ModuleValue,
    NativeFunction,
    Property,
    Unknown,
)
from vramlint.engine.walk import iter_nodes

if TYPE_CHECKING:
    from vramlint.engine.eval_base import Scope
    from vramlint.engine.evaluator import Evaluator

PURE_BUILTINS = ("isinstance", "hasattr", "len", "min", "max", "abs", "round", "float", "int")
PURE_PREFIXES = ("torch.nn.init.", "math.")
TENSOR_ATTRS = frozenset({"weight", "bias"})  # a module's tensors: what is read beyond them is native


class _Shape:
    """What a loop's body needs checked when it runs (None from `_shape`: not a loop to skip)."""

    __slots__ = ("callees", "reads", "attrs")

    def __init__(self) -> None:
        self.callees: list[cst.BaseExpression] = []  # each called expression, resolved once
        # Names and attributes of modules read (not the loop's variable, not its temporaries):
        # (the name, the whole expression), each evaluated once: defined, and of a module.
        self.reads: list[tuple[cst.Name, cst.BaseExpression]] = []
        self.attrs: set[str] = set()  # attributes read on the loop's module (`hasattr`'s too)


def skips(ev: Evaluator, node: cst.For, scope: Scope, items: Any) -> bool:
    """Whether the loop `node` over `items` (its iterable's value) is one to skip (see above)."""
    if type(items) is not list or not items:
        return False
    shape = _shape_of(node, scope)
    return shape is not None and _holds(ev, shape, scope, items)


def skips_apply(ev: Evaluator, fn: Any, items: list[Any]) -> bool:
    """Whether `module.apply(fn)` over `items` (the modules) may skip its calls: `fn` is a function
    of analysed source (or a method bound to an object) whose body is such a loop's body, its last
    parameter the module (nanoGPT's `self.apply(self._init_weights)`)."""
    bound = type(fn) is BoundMethod
    func = fn.func if bound else fn
    if type(func) is not FunctionValue or not isinstance(func.node, cst.FunctionDef) or not items:
        return False
    key = ("inert-apply", id(func.node), bound)
    cache = func.module.node_cache
    shape = cache.get(key, MISSING)  # type: ignore[call-overload]
    if shape is MISSING:
        shape = cache[key] = _function_shape(func.node, 2 if bound else 1)  # type: ignore[index]
    if shape is None:
        return False
    from vramlint.engine.eval_base import Scope

    return _holds(ev, shape, Scope({}, func.closure, func.globals, func.module), items)


def _holds(ev: Evaluator, shape: _Shape, scope: Scope, items: list[Any]) -> bool:
    """The checks made when the loop starts: modules, pure callees, names defined and modules."""
    for m in items:
        if not isinstance(m, Instance):
            return False
    for callee in shape.callees:
        if not _pure_callee(ev, ev.eval(callee, scope)):
            return False
    for name, whole in shape.reads:  # (as the loop would read them: lazy imports resolved)
        root = ev.eval(name, scope)
        if isinstance(root, Unknown) or (whole is not name and not isinstance(root, ModuleValue)):
            return False
        if whole is not name and isinstance(ev.eval(whole, scope), Unknown):
            return False
    checked: set[int] = set()
    for m in items:
        if id(m.cls) not in checked:
            checked.add(id(m.cls))
            if not _plain_attributes(m.cls, shape.attrs):
                return False
        for attr in shape.attrs:  # an object of its own (not a module, tensor or number) may have dunders
            v = m.attrs.get(attr)
            if isinstance(v, Instance) and v.state is None:
                return False
    return True


def _pure_callee(ev: Evaluator, f: Any) -> bool:
    if type(f) is NativeFunction and f.name.startswith(PURE_PREFIXES):
        return True
    builtins = ev.builtins
    return any(f is builtins.get(name) for name in PURE_BUILTINS)


def _plain_attributes(cls: ClassValue, names: set[str]) -> bool:
    """No attribute read on an instance of `cls` runs analysed code: no `__getattr__` or
    `__getattribute__` of analysed source, and none of `names` a property or a descriptor."""
    for hook in ("__getattr__", "__getattribute__"):
        if isinstance(cls.lookup(hook)[0], FunctionValue):
            return False
    return not any(isinstance(cls.lookup(name)[0], (Property, Instance)) for name in names)


def _shape_of(node: cst.For, scope: Scope) -> _Shape | None:
    key = ("inert-loop", id(node))
    cache = scope.module.node_cache
    hit = cache.get(key, MISSING)  # type: ignore[call-overload]
    if hit is MISSING:
        func = scope.func.node if scope.func is not None else None
        hit = cache[key] = _shape(node, func)  # type: ignore[index]
    return hit  # type: ignore[no-any-return]


def _shape(node: cst.For, func: Any) -> _Shape | None:
    it = node.iter
    if node.orelse is not None or type(node.target) is not cst.Name or not isinstance(func, cst.FunctionDef):
        return None
    if not (type(it) is cst.Call and not it.args and type(it.func) is cst.Attribute
            and it.func.attr.value == "modules" and type(it.func.value) is cst.Name):
        return None
    found = _body_shape(node.body, node.target.value)
    if found is None:
        return None
    shape, temps = found
    if temps:  # the names it assigns are read nowhere else in the function
        inside = {id(n) for n in iter_nodes(node)}
        for n in iter_nodes(func.body):
            if type(n) is cst.Name and n.value in temps and id(n) not in inside:
                return None
    return shape


def _function_shape(node: cst.FunctionDef, arity: int) -> _Shape | None:
    """A function called as `fn(module)` (`arity` 1) or `obj.fn(module)` (2), whose body is an
    initialisation loop's: its temporaries are its own locals."""
    p = node.params
    if len(p.params) != arity or p.posonly_params or p.kwonly_params or type(p.star_arg) is cst.Param \
            or p.star_kwarg is not None or node.decorators:
        return None
    found = _body_shape(node.body, p.params[-1].name.value)
    if found is None:
        return None
    shape, _ = found
    others = {x.name.value for x in p.params[:-1]}
    if any(name.value in others for name, _ in shape.reads):
        return None  # `self.std`: what an argument holds is not checked
    return shape


def _body_shape(body: Any, var: str) -> tuple[_Shape, set[str]] | None:
    shape = _Shape()
    temps: set[str] = set()
    if not _block(body, var, shape, temps):
        return None
    if any(name.value in temps and whole is not name for name, whole in shape.reads):
        return None  # an attribute of a temporary: what it holds is not checked
    shape.reads = [(name, whole) for name, whole in shape.reads if name.value not in temps]
    return shape, temps


def _block(body: Any, var: str, shape: _Shape, temps: set[str]) -> bool:
    stmts = body.body if isinstance(body, (cst.IndentedBlock, cst.SimpleStatementSuite)) else body
    for stmt in stmts:
        if type(stmt) is cst.If:
            if not _expr(stmt.test, var, shape) or not _block(stmt.body, var, shape, temps):
                return False
            orelse = stmt.orelse
            if type(orelse) is cst.If:
                if not _block([orelse], var, shape, temps):
                    return False
            elif orelse is not None and not _block(orelse.body, var, shape, temps):
                return False
        elif type(stmt) is cst.SimpleStatementLine:
            for small in stmt.body:
                if type(small) is cst.Pass or type(small) is cst.Expr and type(small.value) is cst.SimpleString:
                    continue  # (a docstring)
                if type(small) is cst.Expr and type(small.value) is cst.Call:
                    if not _expr(small.value, var, shape):
                        return False
                elif type(small) is cst.Assign and len(small.targets) == 1 and type(small.targets[0].target) is cst.Name:
                    name = small.targets[0].target.value
                    if name == var or not _expr(small.value, var, shape):
                        return False
                    temps.add(name)
                else:
                    return False
        else:
            return False
    return True


_CONSTANTS = (cst.Integer, cst.Float, cst.SimpleString)
_OPERATORS = (cst.Comparison, cst.BooleanOperation, cst.UnaryOperation, cst.BinaryOperation)


def _expr(e: Any, var: str, shape: _Shape) -> bool:
    t = type(e)
    if t in _CONSTANTS:
        return True
    if t is cst.Name:
        if e.value == var:
            return False  # the module as an operand (`len(m)`, `m == x`) may run its class's dunders
        shape.reads.append((e, e))
        return True
    if t is cst.Attribute:
        return _attribute(e, var, shape)
    if t is cst.Call:
        if type(e.func) not in (cst.Name, cst.Attribute) or _root(e.func) == var:
            return False  # a method of what the loop reads (`m.reset_parameters()`) may do anything
        if type(e.func) is cst.Attribute and not _attribute(e.func, var, shape):
            return False
        shape.callees.append(e.func)
        if type(e.func) is cst.Name and e.func.value == "hasattr" and len(e.args) == 2:
            name = e.args[1].value  # hasattr(m, "stddev") reads m.stddev
            if type(name) is not cst.SimpleString or not isinstance(name.evaluated_value, str):
                return False
            shape.attrs.add(name.evaluated_value)
        tests = type(e.func) is cst.Name and e.func.value in ("isinstance", "hasattr")
        return all(a.star == "" and (_expr(a.value, var, shape) or tests and i == 0 and _is_name(a.value, var))
                   for i, a in enumerate(e.args))
    if t is cst.Subscript:
        return _expr(e.value, var, shape) and all(
            type(s.slice) is cst.Index and _expr(s.slice.value, var, shape) for s in e.slice)
    if t is cst.IfExp:
        return _expr(e.test, var, shape) and _expr(e.body, var, shape) and _expr(e.orelse, var, shape)
    if t is cst.Tuple or t is cst.List:
        return all(type(el) is cst.Element and _expr(el.value, var, shape) for el in e.elements)
    if t in _OPERATORS:
        if t is cst.Comparison:
            return _expr(e.left, var, shape) and all(_expr(c.comparator, var, shape) for c in e.comparisons)
        if t is cst.UnaryOperation:
            return _expr(e.expression, var, shape)
        return _expr(e.left, var, shape) and _expr(e.right, var, shape)
    return False


def _is_name(e: Any, name: str) -> bool:
    return type(e) is cst.Name and e.value == name


def _root(e: Any) -> str | None:
    while type(e) is cst.Attribute:
        e = e.value
    return e.value if type(e) is cst.Name else None


def _attribute(e: cst.Attribute, var: str, shape: _Shape) -> bool:
    chain: list[str] = []
    v: Any = e
    while type(v) is cst.Attribute:
        chain.append(v.attr.value)
        v = v.value
    if type(v) is not cst.Name:
        return False
    chain.reverse()
    if v.value == var:
        shape.attrs.add(chain[0])
        return len(chain) == 1 or chain[0] in TENSOR_ATTRS
    shape.reads.append((v, e))
    return True
