"""Entry points of the analysis: `analyze_file` and `analyze_source`."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import libcst as cst

from vramlint.analysis import reuse, suppressions
from vramlint.analysis.findings import find_problems, unestimated
from vramlint.analysis.models import Estimator, find_models
from vramlint.analysis.module_level import unevaluated, unresolved_imports
from vramlint.analysis.paths import module_name_for, search_paths
from vramlint.analysis.results import FileAnalysis, UnknownInfo
from vramlint.engine.builtins import stdlib_module
from vramlint.engine.frame_room import run_with_frame_room
from vramlint.engine.gc_policy import fewer_collections
from vramlint.engine.limits import AnalysisBudget
from vramlint.engine.loader import Loader
from vramlint.engine.script_calls import ScriptCalls
from vramlint.engine.script_inputs import ScriptInputs, workspace_root
from vramlint.engine.signals import AnalysisStopped
from vramlint.engine.source import (
    cut_for_edits,
    decode_source,
    read_source_file,
    too_large,
    undecodable_line,
)
from vramlint.engine.values import Location, SourceRef
from vramlint.frontends import registry
from vramlint.settings import Settings, parse_directives, script_args

_loaders: dict[tuple[tuple[str, ...], tuple[tuple[str, str], ...], str], Loader] = {}
_lock = threading.RLock()
T = TypeVar("T")


def script_inputs_for(path: str, settings: Settings) -> ScriptInputs:
    """What the analysed script is given: its command line (`args` of its table), `--set`, its workspace."""
    argv = script_args(settings, path)
    return ScriptInputs(argv=argv[0] if argv else (), argv_source=argv[1] if argv else "",
                        overrides=settings.overrides, root=workspace_root(path, settings.config_file),
                        script_dir=os.path.dirname(os.path.realpath(path)), script=path)


def get_loader(paths: tuple[str, ...], environment: tuple[tuple[str, str], ...] = (),
               torch_version: str = Settings.torch_version) -> Loader:
    """One loader per search path and environment, kept for the process: library modules are
    evaluated once, whichever folder the analysed files are in."""
    key = (paths, environment, torch_version)
    with _lock:
        loader = _loaders.get(key)
        if loader is None:
            loader = Loader(paths, [*registry.native_modules(), stdlib_module])
            loader.environment = dict(environment)
            loader.torch_version = torch_version
            loader.decorator_rules.update(registry.decorator_rules())
            loader.function_rules.update(registry.function_rules())
            loader.lazy_registries.update(registry.lazy_registries())
            loader.evaluator.taped_prefixes = registry.taped_prefixes()
            _loaders[key] = loader
        return loader


def analyze_file(path: str, settings: Settings | None = None, *,
                 cancel: threading.Event | None = None) -> FileAnalysis:
    settings = settings or Settings()
    data, problem = read_source_file(path, settings.max_file_size)
    return analyze_data(path, data, problem, settings, cancel=cancel)


def analyze_data(path: str, data: bytes | None, problem: str | None, settings: Settings, *,
                 cancel: threading.Event | None = None) -> FileAnalysis:
    """`analyze_file` on what `read_source_file` gave for `path` (the cache reads it first)."""
    if data is None:
        loc = Location(path, 1, 0, 1, 0)
        return FileAnalysis(path, errors=[UnknownInfo(problem or "cannot read file", loc)])
    text, warning = decode_source(data)
    result = analyze_source(path, text, settings, cancel=cancel)
    if warning:
        line = undecodable_line(data)
        result.warnings.append(UnknownInfo(warning, Location(path, line, 0, line, 0)))
    return result


class AnalysisCancelled(Exception):
    """`analyze_source` / `analyze_file` stopped because their `cancel` event was set."""


def analyze_source(path: str, text: str, settings: Settings | None = None, *,
                   cancel: threading.Event | None = None, defer_searches: bool = False) -> FileAnalysis:
    """Analyse `text` as the content of `path` (which need not exist: unsaved editor buffers).

    Setting `cancel` (from another thread) stops the analysis within milliseconds and raises
    AnalysisCancelled; the library modules it was evaluating are dropped, not cached half-done.
    `defer_searches`: the memory estimates' searches for the least limit (`device_total`) are
    made when first asked for, not before returning (the editor: a model's diagnostics need only
    whether it fits; `complete_searches` makes them)."""
    settings = settings or Settings()
    dotted, root = module_name_for(path)
    loader = get_loader(search_paths(settings), settings.environment, settings.torch_version)
    with _lock:
        if cancel is not None and cancel.is_set():
            raise AnalysisCancelled(path)
        big = too_large(text, settings.max_file_size)
        if big is not None:  # not parsed: parsing alone would take minutes and gigabytes
            return FileAnalysis(path, errors=[UnknownInfo(big, Location(path, 1, 0, 1, 0))])
        loader.max_file_bytes = settings.max_file_size
        loader.track_names = reuse.enabled()
        loader.model_tables = settings.model_config
        loader.script_inputs = script_inputs_for(path, settings)
        loader.read_failures = []
        loader.fresh_environment()
        # The file's own top folder is importable, as the script's folder is for Python.
        loader.add_root(root, after=len(settings.extra_paths))
        ev = loader.evaluator
        budget = AnalysisBudget(settings.time_budget, settings.step_budget, cancel)
        saved, ev.analysis = ev.analysis, budget
        saved_memos, ev.memos = ev.memos, {}  # (cached results never cross analyses)
        ev.constructions.reset()  # (nor remembered constructions: engine/construction_memo.py)
        try:
            result = _with_big_stack(lambda: _analyze(loader, path, text, dotted, settings))
        finally:
            ev.analysis, ev.memos = saved, saved_memos
            ev.constructions.reset()
        if budget.cancelled:
            raise AnalysisCancelled(path)
        # A `--set` nothing in the script took (a typo, a setting the script does not have) says so.
        # (Only in a file whose parsers or configs looked: `check .` gives every file the same --set.)
        for key, value in settings.overrides if loader.script_inputs.consulted else ():
            if key not in loader.script_inputs.used_overrides:
                result.warnings.append(UnknownInfo(f"--set {key}={value}: no option, parameter or config key of the "
                                                   "script read it", Location(path, 1, 0, 1, 0)))
        return result if defer_searches else complete_searches(result)


def complete_searches(result: FileAnalysis) -> FileAnalysis:
    """`result` with its memory estimates' searches made (`MemoryEstimate.search`): a result
    crossing processes (`--jobs`) or stored in the cache carries its figures."""
    for m in result.models:
        if m.memory is not None:
            m.memory.search()
    return result


def __getattr__(name: str) -> Any:
    """`model_with_memory`, analysis/memory.py's estimator, imported on first use: it imports the
    whole memory model (a twentieth of a cold process's analysis of torchvision without memory)."""
    if name == "model_with_memory":
        from vramlint.analysis.memory import model_with_memory

        return model_with_memory
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _memory_estimator() -> Estimator:
    """The estimator: `model_with_memory` of this module (which a test may replace), else the import's."""
    estimator: Estimator | None = globals().get("model_with_memory")
    return estimator if estimator is not None else __getattr__("model_with_memory")  # type: ignore[no-any-return]


def _analyze(loader: Loader, path: str, text: str, dotted: str, settings: Settings) -> FileAnalysis:
    # The script's calls of its models, wherever its code makes them (engine/script_calls.py):
    # recorded while its top level runs here, and its main block in find_models.
    loader.evaluator.script = script = ScriptCalls()
    loader.evaluator.origins.clear()
    try:
        with script.recording():
            mod, source, problems = loader.load_main(os.path.abspath(path), text, dotted)
    except AnalysisStopped as err:
        # Stopped in the file's own top level (or a library it imports): nothing to build.
        return FileAnalysis(path, warnings=[_stop_info(err, path)])
    result = FileAnalysis(path)
    _report_unread(loader, result)
    if source.syntax_error is not None:
        result.errors.append(UnknownInfo(source.syntax_error.message, source.syntax_error.location))
        return result
    # Expressions too long or deep to parse, and top-level statements that stopped part-way
    # (an endless loop, runaway recursion...): what they define is missing, so say where.
    for problem in source.elided:
        result.warnings.append(UnknownInfo(problem.message, problem.location))
    for stmt, stop in loader.statement_aborts.get(dotted, {}).items():
        at = SourceRef(source, stmt).location
        inner = stop.location
        where = "" if inner is None or (inner.path, inner.line) == (at.path, at.line) else (
            f" (at line {inner.line})" if inner.path == at.path else f" (at {inner})")
        result.warnings.append(UnknownInfo(f"statement not fully evaluated: {stop.reason}{where}", at))
    # A top-level assignment that raised leaves its names undefined: a model defined there would
    # silently be missing, so say why.
    for stmt, problems in loader.statement_problems.get(dotted, {}).items():
        if stmt in loader.statement_aborts.get(dotted, {}) or not _assigns(stmt):
            continue
        for u in problems:
            if u.reason.startswith("raises "):
                result.warnings.append(UnknownInfo(f"statement not evaluated: it {u.reason}", u.ref or SourceRef(source, stmt)))
                break
    # Malformed `# vramlint:` directives: located warnings (the rest of the directive still applies).
    for line, message in parse_directives(source.text, path)[1]:
        result.warnings.append(UnknownInfo(message, Location(path, line, 0, line, 0)))
    classes = reuse.ClassResults(loader, os.path.abspath(path), settings, mod, source)
    with classes:
        models = find_models(loader, mod, source, settings.inputs, settings.batch_size, settings,
                             _memory_estimator() if settings.memory else None, classes)
    classes.finish()
    if not models:  # "no models found" says what could not be evaluated
        result.unevaluated = unevaluated(mod, source, loader.statement_problems.get(dotted, {}))
    else:  # beside other models, a model whose file was not found still says what to provide
        missing = {u.reason for u in loader.missing_files}
        result.warnings += [u for u in unevaluated(mod, source, {}) if any(r in u.reason for r in missing)]
    loader.missing_files = []
    _report_unread(loader, result)
    stopped = loader.evaluator.analysis.stopped
    if stopped is not None and not stopped.cancelled:
        # Models built before the stop stand; the one it interrupted carries the same error.
        result.warnings.append(_stop_info(stopped, path))
    if settings.models:
        models = [m for m in models if m.name in settings.models]
    result.models = models
    # After find_models: an import counts once the analysis has read what it binds.
    imports = unresolved_imports(loader, mod, source, settings.extra_paths, module_name_for(path)[1])
    result.findings = suppressions.apply(imports + find_problems(result), text, os.path.abspath(path),
                                         _checkable(settings, stopped is None, result))
    return result


# The codes an analysis without a memory estimate can still report (the rest need the forward's trace).
_WITHOUT_MEMORY = frozenset({"VL101", "VL301", "VL302", "VL303"})


def _checkable(settings: Settings, complete: bool, result: FileAnalysis) -> frozenset[str] | None:
    """The codes whose absence this analysis vouches for, for unused suppressions (None: every
    code): none when it stopped early or kept only some models; fewer when a model has no
    estimate (no memory, no inputs: VL001 or VL102 could not have fired)."""
    if not complete or settings.models:
        return frozenset()
    return None if settings.memory and not unestimated(result.models) else _WITHOUT_MEMORY


def _report_unread(loader: Loader, result: FileAnalysis) -> None:
    """Imported files that were not read (a device, a FIFO, a folder, over max-file-size), at
    the import that asked for them: otherwise what they define would be silently missing."""
    for u in loader.read_failures:
        info = UnknownInfo(u.reason, u.ref)
        if all(w.key() != info.key() for w in result.warnings):
            result.warnings.append(info)
    loader.read_failures = []


def _stop_info(stop: AnalysisStopped, path: str) -> UnknownInfo:
    """Where the analysis stopped (the innermost loop running then), else the file's top."""
    return UnknownInfo(stop.message, stop.ref or Location(path, 1, 0, 1, 0))


def _assigns(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and any(
        isinstance(small, (cst.Assign, cst.AnnAssign)) for small in stmt.body)


ANALYSIS_THREAD = "vramlint-analysis"  # a thread of this name has the stack below (the editor's worker)
ANALYSIS_STACK_BYTES = 512 * 1024 * 1024


def _with_big_stack(fn: Callable[[], T]) -> T:
    """Run `fn` in a thread with a large stack: deeply nested code recurses deeply. (The
    interpreter's recursion limit is raised here, when an analysis runs, not when vramlint is imported.)"""
    if sys.getrecursionlimit() < 20_000:
        sys.setrecursionlimit(20_000)
    if threading.current_thread().name == ANALYSIS_THREAD:
        return fn()
    out: list[T] = []
    err: list[BaseException] = []

    def target() -> None:
        try:
            with fewer_collections():  # engine/gc_policy.py: full collections cost a fifth of an analysis
                out.append(run_with_frame_room(fn))  # engine/frame_room.py: no mmap per call
        except BaseException as e:  # re-raised in the caller
            err.append(e)

    old = threading.stack_size()
    threading.stack_size(ANALYSIS_STACK_BYTES)
    try:
        t = threading.Thread(target=target, name=ANALYSIS_THREAD)
        t.start()
    finally:
        threading.stack_size(old)
    t.join()
    if err:
        raise err[0]
    return out[0]



def prepare_next_edit(path: str) -> None:
    """Make now what the next analysis of an edited `path` reuses (the cut of its parse at its
    statements: engine/source.py `cut_for_edits`). An editor calls it after showing a result."""
    with _lock:
        cut_for_edits(os.path.abspath(path))


def set_open_files(settings: Settings, texts: dict[str, str], roots: list[str]) -> None:
    """An editor's open files: their unsaved text is what imports of them read, and the
    workspace's own modules (not installed packages) are evaluated again, since an open file
    they import may have changed."""
    loader = get_loader(search_paths(settings), settings.environment, settings.torch_version)
    with _lock:
        loader.overlays = {os.path.abspath(p): t for p, t in texts.items()}
        loader.forget_failed_imports()  # an unresolved import (VL303) the user has just fixed
        keep = ("site-packages", "dist-packages", f"{os.sep}.venv{os.sep}", f"{os.sep}venv{os.sep}")
        for name, mod in list(loader.modules.items()):
            f = getattr(mod, "ns", {}).get("__file__") if hasattr(mod, "ns") else None
            if isinstance(f, str) and any(f.startswith(os.path.abspath(r) + os.sep) for r in roots) \
                    and not any(k in f for k in keep):
                del loader.modules[name]
