"""The evaluator's compound statements: `if` (with its policy for undecided conditions:
merge plain branches, forget what skipped code would change), `for`/`while` (budget
exhaustion located at the innermost loop), `try`, `with`, `match`. Bound as methods of
`Evaluator`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import libcst as cst

from vramlint.engine import inert_loops
from vramlint.engine.code_facts import (
    always_raises,
    bound_names,
    if_branches,
    mutated_paths,
    plain_block,
    returns,
)
from vramlint.engine.eval_base import Scope
from vramlint.engine.signals import (
    BreakSignal,
    BudgetExceeded,
    ContinueSignal,
    RaiseSignal,
    ReturnSignal,
    Undecided,
)
from vramlint.engine.values import (
    MISSING,
    ClassValue,
    ExceptionValue,
    LazyBinding,
    ModuleValue,
    StateFreeFunction,
    Unknown,
    Value,
    as_data,
    is_data_value,
)

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator


MISSING_ATTR: Any = object()  # getattr's default in class patterns: "no such attribute"


def _same_value(a: Any, b: Any) -> bool:
    if a is b:
        return True
    plain = (int, float, str, bool, bytes, type(None))
    if type(a) is type(b) and isinstance(a, plain):
        return bool(a == b)
    if type(a) is type(b) and isinstance(a, tuple) and len(a) == len(b):
        return all(_same_value(x, y) for x, y in zip(a, b))
    # Tensors of the same shape and dtype on both paths (`x = self.drop(x)` or not): the shapes
    # that follow are the same either way.
    shape = getattr(a, "shape", None)
    return (type(a) is type(b) and isinstance(a, Value) and isinstance(shape, tuple)
            and all(isinstance(d, int) for d in shape) and shape == getattr(b, "shape", None)
            and getattr(a, "dtype", None) == getattr(b, "dtype", None))


def s_if(self: Evaluator, node: cst.If, scope: Scope) -> None:
    try:
        cond = self.truth(self.eval(node.test, scope))
    except Undecided as und:
        _undecided_if(self, node, scope, Unknown(f"could not decide this condition: {und.unknown.reason}",
                                                 self.ref(scope, node.test)))
        return
    if cond:
        self.exec_block(node.body, scope)
    elif node.orelse is not None:
        if type(node.orelse) is cst.If:
            self.s_if(node.orelse, scope)
        else:
            self.exec_block(node.orelse.body, scope)


def _undecided_if(self: Evaluator, node: cst.If, scope: Scope, why: Unknown) -> None:
    """An `if` whose condition is unknown. Branches that only raise are paths the code does
    not take when it runs. A `return` in another branch makes the function's result unknown
    (falling through would give the other path's value as if it were certain). Branches of
    plain assignments and definitions are each evaluated apart and merged: a name bound to
    the same value on every path keeps it (timm's `if "X" in os.environ: A = int(...) else:
    A = 1` defines `A` either way), a name that differs becomes an unknown naming the
    condition. Other branches are skipped, and the names they bind become that unknown."""
    branches = [b for b in if_branches(node) if not always_raises(b)]
    if scope.func is not None and any(returns(b) for b in branches):
        self.record(why)
        raise ReturnSignal(Unknown(f"the return value depends on a condition: {why.reason}", why.ref))
    if all(_changes_nothing(self, b, scope) for b in branches):
        return  # `if torch.cuda.is_available(): torch.cuda.empty_cache()`: no path changes anything
    if self.tape is not None:
        # A forward traced for memory: running both paths would record both on the tape.
        self.record(why)
        return
    if branches and all(plain_block(b) for b in branches):
        if _merge_branches(self, branches, scope, why):
            return
    else:
        for name in {n for b in branches for n in bound_names(b)}:
            self.bind(name, why, scope)
        _forget_mutated(self, [s for b in branches for s in b], scope, why)
    self.record(why)


def _changes_nothing(self: Evaluator, body: Sequence[cst.CSTNode], scope: Scope) -> bool:
    """Whether a branch only calls, without arguments, functions that change nothing the analysis
    tracks (StateFreeFunction), or passes: skipping it loses nothing."""
    for stmt in body:
        if type(stmt) is not cst.SimpleStatementLine:
            return False
        for small in stmt.body:
            if type(small) is cst.Pass:
                continue
            call = small.value if type(small) is cst.Expr else None
            if type(call) is not cst.Call or call.args or not _dotted_name(call.func):
                return False
            try:
                fn = self.eval(call.func, scope)
            except (RaiseSignal, Undecided):
                return False
            if not isinstance(fn, StateFreeFunction):
                return False
    return True


def _dotted_name(node: cst.BaseExpression) -> bool:
    """`name` or `a.b.name` (a module's function): reading it changes nothing."""
    while type(node) is cst.Attribute:
        node = node.value
    return type(node) is cst.Name


def _forget_mutated(self: Evaluator, body: Sequence[cst.CSTNode], scope: Scope, why: Unknown) -> None:
    """Code that was skipped (an undecided `if`, a loop that could not run) may have changed
    objects other code reads later: `_registry[name] = cfg` in a decorator run at import. The
    names of those objects become the unknown, in the scope that holds them (a module global
    too), so a later lookup says "unknown" instead of answering from the stale object. The
    instance under construction (`self`) is exempt: the recorded unknown already marks it."""
    for name, attr in mutated_paths(body):
        holder = scope.globals
        s: Scope | None = scope
        while s is not None:  # where Python finds the name: this scope, enclosing functions
            if name in s.vars and (s is scope or not s.is_class):
                holder = s.vars
                break
            s = s.parent
        if name not in holder or holder[name] is scope.self_value:
            continue
        if type(holder[name]) is LazyBinding:  # `import settings` at module level binds lazily
            holder[name] = self.force(holder[name])
        if isinstance(holder[name], ModuleValue):
            # `config.WIDTH = 64`: that attribute of an analysed module, not the module itself.
            # Native modules (os, torch) are shared by every analysis of the process: left as they are.
            if attr is not None and holder[name].source is not None:
                holder[name].ns[attr] = why
            continue
        holder[name] = why


def _merge_branches(self: Evaluator, branches: list[Sequence[cst.CSTNode]], scope: Scope, why: Unknown) -> bool:
    """Run each branch on its own copy of the scope's variables and bind the merge; True when
    every path gave every name the same value (then the condition changed nothing)."""
    before = scope.vars
    outcomes: list[dict[str, Any]] = []
    try:
        for body in branches:
            scope.vars = dict(before)
            try:
                for stmt in body:
                    self.exec_stmt(stmt, scope)
            except RaiseSignal:
                continue  # a path that fails: not the one the running code takes
            outcomes.append(scope.vars)
    finally:
        scope.vars = before
    if not outcomes:
        return False
    names = {k for out in outcomes for k, v in out.items() if before.get(k, MISSING) is not v}
    same = True
    for name in names:
        values = [out.get(name, MISSING) for out in outcomes]
        if all(_same_value(values[0], v) for v in values[1:]) and values[0] is not MISSING:
            self.bind(name, values[0], scope)
        else:
            same = False
            merged = Unknown(f"`{name}` depends on a condition: {why.reason}", why.ref)
            self.bind(name, as_data(merged) if all(is_data_value(v) for v in values) else merged, scope)
    return same


def s_for(self: Evaluator, node: cst.For, scope: Scope) -> None:
    try:
        _run_for(self, node, scope)
    except BudgetExceeded as err:
        raise _in_loop(self, err, scope, node) from None


def s_while(self: Evaluator, node: cst.While, scope: Scope) -> None:
    try:
        _run_while(self, node, scope)
    except BudgetExceeded as err:
        raise _in_loop(self, err, scope, node) from None


def _in_loop(self: Evaluator, err: BudgetExceeded, scope: Scope, node: cst.CSTNode) -> BudgetExceeded:
    """Steps ran out inside this loop: say so at the innermost such loop rather than at the
    call that was running (`while True:` in `__init__` was reported at the class name)."""
    if err.message.startswith(("evaluation budget", "analysis stopped", "memory trace over")) \
            and not getattr(err, "in_loop", False):
        err.ref = self.ref(scope, node)
        err.in_loop = True  # type: ignore[attr-defined]
    return err


def _run_for(self: Evaluator, node: cst.For, scope: Scope) -> None:
    iterable = self.eval(node.iter, scope)
    if type(iterable) is list and inert_loops.skips(self, node, scope, iterable):
        self.assign(node.target, iterable[-1], scope)  # a weight-initialisation loop: see inert_loops.py
        return
    try:
        it = self.iterate(iterable)
        broke = False
        for item in it:
            self.charge()
            self.assign(node.target, item, scope)
            try:
                self.exec_block(node.body, scope)
            except BreakSignal:
                broke = True
                break
            except ContinueSignal:
                continue
    except Undecided as und:
        why = Unknown(f"could not iterate: {und.unknown.reason}", self.ref(scope, node.iter))
        self.record(why)
        _forget_mutated(self, node.body.body, scope, why)
        return
    if not broke and node.orelse is not None:
        self.exec_block(node.orelse.body, scope)


def _run_while(self: Evaluator, node: cst.While, scope: Scope) -> None:
    while True:
        self.charge()
        try:
            cond = self.truth(self.eval(node.test, scope))
        except Undecided as und:
            why = Unknown(f"could not decide this loop condition: {und.unknown.reason}", self.ref(scope, node.test))
            self.record(why)
            _forget_mutated(self, node.body.body, scope, why)
            return
        if not cond:
            break
        try:
            self.exec_block(node.body, scope)
        except BreakSignal:
            return
        except ContinueSignal:
            continue
    if node.orelse is not None:
        self.exec_block(node.orelse.body, scope)


def s_try(self: Evaluator, node: cst.Try | cst.TryStar, scope: Scope) -> None:
    try:
        try:
            self.exec_block(node.body, scope)
        except RaiseSignal as sig:
            handler = _match_handler(self, node.handlers, sig, scope)
            if handler is None:
                raise
            if handler.name is not None:
                self.assign(handler.name.name, sig.exc, scope)
            self.exec_block(handler.body, scope)
        else:
            if node.orelse is not None:
                self.exec_block(node.orelse.body, scope)
    finally:
        if node.finalbody is not None:
            self.exec_block(node.finalbody.body, scope)


def _match_handler(self: Evaluator, handlers: Any, sig: RaiseSignal, scope: Scope) -> Any:
    for h in handlers:
        if h.type is None:
            return h
        want = self.eval(h.type, scope)
        wants = want if isinstance(want, tuple) else (want,)
        exc = sig.exc
        for w in wants:
            if isinstance(w, Unknown):
                return h  # an unknown exception type: assume it matches
            if isinstance(w, ClassValue):
                if isinstance(exc, ExceptionValue) and exc.cls.is_subclass_of(w):
                    return h
                if isinstance(exc, Unknown) and w.name in ("Exception", "BaseException"):
                    return h
    return None


def s_with(self: Evaluator, node: cst.With, scope: Scope) -> None:
    exits = []
    try:
        for item in node.items:
            ctx = self.eval(item.item, scope)
            if item.asname is not None or hasattr(ctx, "exit"):
                entered = self.protocol.enter(ctx)
                if hasattr(ctx, "exit"):  # native contexts with effects (torch.autocast)
                    exits.append(ctx)
                if item.asname is not None:
                    self.assign(item.asname.name, entered, scope)
        self.exec_block(node.body, scope)
    finally:
        for ctx in reversed(exits):
            ctx.exit(self)


def s_match(self: Evaluator, node: cst.Match, scope: Scope) -> None:
    """`match` (3.10): the first case whose pattern matches and whose guard holds runs; a
    pattern or guard that cannot be decided stops here, like an undecidable `if`."""
    subject = self.eval(node.subject, scope)
    for case in node.cases:
        try:
            hit = _match(self, case.pattern, subject, scope)
            if hit and case.guard is not None:
                hit = self.truth(self.eval(case.guard, scope))
        except Undecided as und:
            self.record(Unknown(f"could not decide this case: {und.unknown.reason}", self.ref(scope, case.pattern)))
            return
        if hit:
            self.exec_block(case.body, scope)
            return


def _match(self: Evaluator, pat: cst.MatchPattern, v: Any, scope: Scope) -> bool:
    """Whether `v` matches `pat`, binding its captures; raises Undecided when unknown."""
    if isinstance(v, Unknown):
        raise Undecided(v)
    if type(pat) is cst.MatchAs:
        if pat.pattern is not None and not _match(self, pat.pattern, v, scope):
            return False
        if pat.name is not None:
            self.bind(pat.name.value, v, scope)
        return True
    if type(pat) is cst.MatchOr:
        return any(_match(self, e.pattern, v, scope) for e in pat.patterns)
    if type(pat) is cst.MatchSingleton:
        return self.compare(cst.Is, v, self.eval(pat.value, scope)) is True
    if type(pat) is cst.MatchValue:
        return self.truth(self.compare(cst.Equal, v, self.eval(pat.value, scope)))
    if isinstance(pat, (cst.MatchList, cst.MatchTuple)):
        if not isinstance(v, (list, tuple, range)):  # str, bytes and dicts are not sequences here
            return False
        items = list(v)
        elems = list(pat.patterns)
        stars = [e for e in elems if type(e) is cst.MatchStar]
        subs = [e.value for e in elems if type(e) is cst.MatchSequenceElement]
        if not stars:
            return len(items) == len(subs) and all(_match(self, p, x, scope) for p, x in zip(subs, items))
        star = elems.index(stars[0])
        after = len(subs) - star
        if len(items) < len(subs):
            return False
        head, rest, tail = items[:star], items[star:len(items) - after], items[len(items) - after:]
        if not all(_match(self, p, x, scope) for p, x in zip(subs, head + tail)):
            return False
        if stars[0].name is not None:
            self.bind(stars[0].name.value, rest, scope)
        return True
    if type(pat) is cst.MatchMapping:
        if not isinstance(v, dict):
            return False
        used = []
        for el in pat.elements:
            key = self.eval(el.key, scope)
            if isinstance(key, Unknown):
                raise Undecided(key)
            if key not in v or not _match(self, el.pattern, v[key], scope):
                return False
            used.append(key)
        if pat.rest is not None:
            self.bind(pat.rest.value, {k: x for k, x in v.items() if k not in used}, scope)
        return True
    if type(pat) is cst.MatchClass:
        from vramlint.engine.builtins import isinstance_of

        cls = self.eval(pat.cls, scope)
        ok = isinstance_of(self, v, cls)
        if isinstance(ok, Unknown):
            raise Undecided(ok)
        if not ok:
            return False
        pos = [e.value for e in pat.patterns]
        if pos:
            if isinstance(cls, ClassValue) and cls.module_name == "builtins" and len(pos) == 1:
                return _match(self, pos[0], v, scope)  # int(n), str(s): the subject itself
            names = _match_args(self, cls)
            if names is None or len(pos) > len(names):
                raise Undecided(self.unknown("class pattern without __match_args__", scope, pat))
            attrs = list(zip(names, pos))
        else:
            attrs = []
        attrs += [(k.key.value, k.pattern) for k in pat.kwds]
        for name, sub in attrs:
            got = self.protocol.getattr(v, name, MISSING_ATTR)
            if got is MISSING_ATTR or not _match(self, sub, got, scope):
                return False
        return True
    raise Undecided(self.unknown(f"unsupported pattern `{type(pat).__name__}`", scope, pat))


def _match_args(self: Evaluator, cls: Any) -> list[str] | None:
    if not isinstance(cls, ClassValue):
        return None
    explicit, _ = cls.lookup("__match_args__")
    if isinstance(explicit, (tuple, list)):
        return [x for x in explicit if isinstance(x, str)]
    if "dataclass" in cls.flags:
        return [n for n, _ in cls.ns.get("__dataclass_fields__", [])]
    fields, _ = cls.lookup("_fields")
    return list(fields) if isinstance(fields, tuple) else None
