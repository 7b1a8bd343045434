"""Configured input shapes (`--input-shape`, `inputs` in the configuration, a directive) against
the forward they are given to."""

from __future__ import annotations

import libcst as cst

from vramlint.engine.values import FunctionValue, Instance
from vramlint.frontends.registry import frontend_of


def forward_arity_problem(model: Instance, given: int, source: str) -> str | None:
    """Why `given` input shapes cannot be the positional arguments of the model's `forward`, in
    one line; None when they can, or when it cannot be told (a native forward, `*args`, a framework
    whose call takes several inputs as one list as well: frontends/interface.py)."""
    fn, _ = model.cls.lookup("forward")
    if "forward" in model.attrs:  # set on the instance (`self.forward = self.forward_fused`): not the class's
        return None
    frontend = frontend_of(model)
    if frontend is not None and not frontend.forward_signature_checked:
        return None
    if not isinstance(fn, FunctionValue) or not isinstance(fn.node, cst.FunctionDef):
        return None
    params = fn.node.params
    positional = [*params.posonly_params, *params.params][1:]  # without self
    names = [p.name.value for p in positional]
    required = sum(1 for p in positional if p.default is None)
    if required <= given and (given <= len(positional) or isinstance(params.star_arg, cst.Param)):
        return None
    takes = f"{required}" if required == len(positional) else f"{required} to {len(positional)}"
    were = "was" if given == 1 else "were"
    return (f"{fn.qualname}() takes {takes} input{'' if len(positional) == 1 else 's'} ({', '.join(names) or 'none'}), "
            f"but {given} input shape{'' if given == 1 else 's'} {were} given "
            f"({'--input-shape' if source == 'flag' else source})")
