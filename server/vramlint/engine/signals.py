"""Control flow of the abstract interpreter, carried by Python exceptions."""

from __future__ import annotations

from typing import Any

from vramlint.engine.values import SourceRef, Unknown


class ReturnSignal(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


class BreakSignal(Exception):
    pass


class ContinueSignal(Exception):
    pass


class RaiseSignal(Exception):
    """Analysed code raised an exception (an ExceptionValue, or an Unknown)."""

    def __init__(self, exc: Any, ref: SourceRef | None = None) -> None:
        super().__init__(repr(exc))
        self.exc = exc
        self.ref = ref


class BudgetExceeded(Exception):
    """The evaluation ran out of steps or depth; never caught by analysed `try` blocks."""

    def __init__(self, message: str, ref: SourceRef | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.ref = ref


class Undecided(Exception):
    """A condition depends on an Unknown; the statement is skipped and the cause recorded."""

    def __init__(self, unknown: Unknown) -> None:
        super().__init__(unknown.reason)
        self.unknown = unknown


class AnalysisStopped(BudgetExceeded):
    """The analysis as a whole ran out of time or steps, or was cancelled (engine/limits.py).

    A BudgetExceeded, so every place that gives up on one statement or model gives up here too
    and keeps what was done before; the budget stays exhausted, so everything after it stops at
    its first step (even code that swallowed the exception). Library modules do not catch it:
    a module it interrupts is dropped, not cached half-evaluated (loader.py)."""

    def __init__(self, message: str, ref: SourceRef | None = None, cancelled: bool = False) -> None:
        super().__init__(message, ref)
        self.cancelled = cancelled
