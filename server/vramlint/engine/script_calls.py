"""The models' calls from a script's own code, recorded while the script runs.

A training script rarely calls its model where the model is defined: `model(x)` sits in
`train()`, called from `main()`, inside `for epoch ...: for x, y in loader:`, with `x` made by a
DataLoader or `torch.randn(args.batch_size, ...)` in another function. The evaluator already
runs that code (analysis/models.py runs the script's main block and the `main()` it calls); a
framework's call of a model (frontends/torch/module.py: Module.__call__) reports it here, so the
analysis can take a model's inputs from its first call with known arguments, wherever that is.

Only outer calls count: a call made while another model's forward runs is that model's
business. A training loop would run its model once per iteration, each a full forward through
the evaluator; nothing new is learnt after the first, so the script stops (ScriptStopped) when a
call site calls the same model a second time: the loop has come round.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from vramlint.engine.eval_base import any_unknown
from vramlint.engine.signals import BudgetExceeded
from vramlint.engine.values import SourceRef


class ScriptStopped(BudgetExceeded):
    """The script came round its loop (a call site called the same model again): it has shown
    what it does. Not an error: whoever runs the script takes it as the script's end."""


@dataclass
class ModelCall:
    """A model's first call from the script with known arguments."""

    model: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    ref: SourceRef | None


@dataclass
class ScriptCalls:
    """The recorder `Evaluator.script` holds for one analysis; it records while `active` (the
    analysed file's code runs), not while the analysis traces a forward for shapes or memory."""

    active: bool = False
    calls: dict[int, ModelCall] = field(default_factory=dict)
    depth: int = 0  # models' calls running now (0: the script's own code is calling)
    _sites: set[tuple[int, int]] = field(default_factory=set)  # (model, call node) seen

    def enter(self, model: Any, args: tuple[Any, ...], kwargs: dict[str, Any], ref: SourceRef | None) -> None:
        """A model is called; `exit` follows when its forward is done (also when it raises)."""
        self.depth += 1
        if self.depth > 1:
            return
        site = (id(model), id(ref.node) if ref is not None else 0)
        if site in self._sites and ref is not None:
            self.depth -= 1
            raise ScriptStopped(f"the script calls {getattr(getattr(model, 'cls', None), 'name', 'the model')} "
                                "again at the same place: its loop has come round", ref)
        self._sites.add(site)
        if id(model) not in self.calls and any_unknown(args, tuple(kwargs.values())) is None:
            self.calls[id(model)] = ModelCall(model, args, dict(kwargs), ref)

    def exit(self) -> None:
        self.depth -= 1

    @contextmanager
    def recording(self) -> Iterator[None]:
        saved, self.active = self.active, True
        try:
            yield
        finally:
            self.active = saved

    def first_call(self, model: Any) -> ModelCall | None:
        hit = self.calls.get(id(model))
        return hit if hit is not None and hit.model is model else None
