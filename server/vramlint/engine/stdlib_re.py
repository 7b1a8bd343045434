"""The `re` module over known strings: Python's own `re`, guarded against slow patterns.

Patterns and subjects must be known strings (an Unknown argument gives that Unknown back).
A regular expression can backtrack for a very long time, and a running match cannot be
interrupted, so each pattern gets a limit on the subject length derived from its shape: with
`u` unbounded repeats the backtracking work grows like n**(u+1), and a repeat nested inside an
unbounded repeat can grow exponentially. Longer subjects give an Unknown instead of a result.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from vramlint.engine.evaluator import contains_unknown
from vramlint.engine.values import MISSING, Args, ClassValue, Kwargs, NativeFunction, Unknown, Value

try:  # Python 3.11+
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader


WORK_LIMIT = 10**8  # backtracking steps we are willing to risk for one call
NESTED_LIMIT = 24  # subject length for patterns that can backtrack exponentially
MAX_SUBJECT = 1_000_000

_FLAGS = {
    "IGNORECASE": re.IGNORECASE, "I": re.IGNORECASE, "MULTILINE": re.MULTILINE, "M": re.MULTILINE,
    "DOTALL": re.DOTALL, "S": re.DOTALL, "VERBOSE": re.VERBOSE, "X": re.VERBOSE, "ASCII": re.ASCII,
    "A": re.ASCII, "UNICODE": re.UNICODE, "U": re.UNICODE, "NOFLAG": 0,
}
_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, getattr(sre_parse, "POSSESSIVE_REPEAT", None)} - {None}


def _shape(items: Any, inside_unbounded: bool) -> tuple[int, bool]:
    """(number of unbounded repeats, whether one is nested in another unbounded repeat)."""
    count, nested = 0, False
    for op, av in items:
        subs: list[Any] = []
        unbounded_here = False
        if op in _REPEATS:
            lo, hi, sub = av
            unbounded_here = hi == sre_parse.MAXREPEAT
            if unbounded_here:
                count += 1
                if inside_unbounded:
                    nested = True
            subs = [sub]
        elif op is sre_parse.SUBPATTERN:
            subs = [av[-1]]
        elif op is sre_parse.BRANCH:
            subs = list(av[1])
        elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
            subs = [av[1]]
        elif op is getattr(sre_parse, "ATOMIC_GROUP", None):
            subs = [av]
        elif op is sre_parse.GROUPREF_EXISTS:
            subs = [x for x in av[1:] if x is not None]
        for sub in subs:
            c, n = _shape(sub, inside_unbounded or unbounded_here)
            count += c
            nested = nested or n
    return count, nested


_limits: dict[tuple[str, int], int] = {}


def _subject_limit(pattern: str, flags: int) -> int:
    key = (pattern, flags)
    hit = _limits.get(key)
    if hit is None:
        try:
            count, nested = _shape(sre_parse.parse(pattern, flags), False)
        except Exception:
            count, nested = 0, False  # re.compile reports the error
        if nested:
            hit = NESTED_LIMIT
        else:
            hit = min(MAX_SUBJECT, int(WORK_LIMIT ** (1 / (count + 1))))
        _limits[key] = hit
    return hit


class MatchValue(Value):
    """A re.Match over known strings."""

    __slots__ = ("m",)
    type_name = "re.Match"

    def __init__(self, m: re.Match[str]) -> None:
        self.m = m

    def get_attribute(self, ev: Evaluator, name: str) -> Any:
        m = self.m
        if name in ("group", "groups", "groupdict", "start", "end", "span", "expand"):
            method = getattr(m, name)

            def impl(ev2: Evaluator, a: Args, k: Kwargs) -> Any:
                u = contains_unknown((a, tuple(k.values())))
                if u is not None:
                    return u
                try:
                    return method(*a, **k)
                except (IndexError, TypeError, re.error) as err:
                    raise ev2.raise_error("IndexError", str(err)) from None

            return NativeFunction(f"re.Match.{name}", impl)
        if name in ("string", "pos", "endpos", "lastindex", "lastgroup"):
            return getattr(m, name)
        if name == "re":
            return PatternValue(m.re)
        return MISSING

    def getitem(self, ev: Evaluator, idx: Any) -> Any:
        if isinstance(idx, Unknown):
            return idx
        try:
            return self.m[idx]
        except (IndexError, TypeError) as err:
            raise ev.raise_error("IndexError", str(err)) from None

    def truth(self, ev: Evaluator) -> bool:
        return True


class PatternValue(Value):
    """A compiled pattern (re.Pattern)."""

    __slots__ = ("p",)
    type_name = "re.Pattern"

    def __init__(self, p: re.Pattern[str]) -> None:
        self.p = p

    def get_attribute(self, ev: Evaluator, name: str) -> Any:
        if name in _SUBJECT_FUNCS:
            return NativeFunction(f"re.Pattern.{name}", lambda ev2, a, k: _apply(ev2, self.p, name, a, k))
        if name in ("pattern", "flags", "groups", "groupindex"):
            v = getattr(self.p, name)
            return dict(v) if name == "groupindex" else v
        return MISSING


# method name -> index of the subject string among the arguments after the pattern
_SUBJECT_FUNCS = {"match": 0, "fullmatch": 0, "search": 0, "findall": 0, "finditer": 0, "split": 0,
                  "sub": 1, "subn": 1}


def _wrap(r: Any) -> Any:
    if isinstance(r, re.Match):
        return MatchValue(r)
    if isinstance(r, list):
        return [_wrap(x) for x in r]
    return r


def _apply(ev: Evaluator, p: re.Pattern[str], name: str, a: Args, k: Kwargs) -> Any:
    u = contains_unknown((a, tuple(k.values())))
    if u is not None:
        return u
    pos = _SUBJECT_FUNCS[name]
    subject = a[pos] if len(a) > pos else k.get("string")
    if not isinstance(subject, (str, bytes)):
        return Unknown(f"re.{name} of a non-string", ev.current_ref)
    if name in ("sub", "subn"):
        repl = a[0] if a else k.get("repl")
        if not isinstance(repl, (str, bytes)):
            return Unknown(f"re.{name} with a replacement function", ev.current_ref)
    if len(subject) > _subject_limit(p.pattern, p.flags):
        return Unknown(f"re.{name} of a long string with a pattern that may backtrack for long", ev.current_ref)
    ev.charge(1 + len(subject) // 16)
    try:
        r = getattr(p, name)(*a, **k)
    except (TypeError, ValueError, re.error) as err:
        raise ev.raise_error("ValueError", str(err)) from None
    if name == "finditer":
        r = list(r)
    return _wrap(r)


def _compile(ev: Evaluator, pattern: Any, flags: Any) -> Any:
    if isinstance(pattern, PatternValue):
        return pattern
    if isinstance(pattern, Unknown) or isinstance(flags, Unknown):
        return pattern if isinstance(pattern, Unknown) else flags
    if not isinstance(pattern, (str, bytes)) or not isinstance(flags, int):
        return Unknown("re pattern that is not a known string", ev.current_ref)
    try:
        return PatternValue(re.compile(pattern, flags))  # type: ignore[arg-type]
    except (re.error, TypeError, ValueError, OverflowError, RecursionError) as err:
        raise ev.raise_error("ValueError", f"invalid regular expression: {err}") from None


def re_module(loader: Loader) -> Any:
    from vramlint.engine.builtins import _module

    def compile_(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        return _compile(ev, a[0] if a else k.get("pattern"), a[1] if len(a) > 1 else k.get("flags", 0))

    def function(name: str) -> NativeFunction:
        # re.f(pattern, <n arguments of Pattern.f>, flags)
        n = {"split": 2, "sub": 3, "subn": 3}.get(name, 1)

        def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
            k = dict(k)
            flags = a[n + 1] if len(a) > n + 1 else k.pop("flags", 0)
            p = _compile(ev, a[0] if a else k.pop("pattern", None), flags)
            if not isinstance(p, PatternValue):
                return p
            return _apply(ev, p.p, name, tuple(a[1: n + 1]), k)

        return NativeFunction(f"re.{name}", impl)

    def escape(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        s = a[0] if a else k.get("pattern")
        if isinstance(s, Unknown):
            return s
        if not isinstance(s, (str, bytes)):
            return Unknown("re.escape of a non-string", ev.current_ref)
        return re.escape(s)  # type: ignore[type-var]

    obj = loader.builtins["object"]
    ns: dict[str, Any] = dict(_FLAGS)
    ns.update({name: function(name) for name in _SUBJECT_FUNCS})
    ns["compile"] = NativeFunction("re.compile", compile_)
    ns["escape"] = NativeFunction("re.escape", escape)
    ns["purge"] = NativeFunction("re.purge", lambda ev, a, k: None)
    ns["RegexFlag"] = loader.builtins["int"]
    ns["Pattern"] = ClassValue("Pattern", (obj,), {"__class_getitem__": True}, "re", native=_TypeCheck(PatternValue))
    ns["Match"] = ClassValue("Match", (obj,), {"__class_getitem__": True}, "re", native=_TypeCheck(MatchValue))
    ns["error"] = ClassValue("error", (loader.builtins["ValueError"],), {}, "re", native=loader.builtins["ValueError"].native)
    ns["PatternError"] = ns["error"]
    return _module("re", ns)


class _TypeCheck:
    def __init__(self, kind: type) -> None:
        self.kind = kind

    def instancecheck(self, ev: Evaluator, v: Any) -> Any:
        return v if isinstance(v, Unknown) else isinstance(v, self.kind)
