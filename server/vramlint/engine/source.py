"""Parsed source files, cached by content hash.

Positions are computed lazily: libcst's PositionProvider costs about as much as the parse
itself, and most library modules never need a location (only what ends up in a result does).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider
from libcst.metadata.position_provider import PositionProvidingCodegenState

from vramlint.engine import fast_parse, gc_policy
from vramlint.engine.reads import read_source_file  # noqa: F401 (where the engine's readers import it)
from vramlint.engine.values import Location, SourceRef


@dataclass(frozen=True)
class SyntaxProblem:
    message: str
    location: Location


def decode_source(data: bytes) -> tuple[str, str | None]:
    """Decode bytes like Python does (PEP 263 cookie, BOM, else UTF-8).

    Undecodable bytes are replaced rather than rejected so the rest of the file is still
    analysed; the second value is a warning to report in that case.
    """
    import io
    import tokenize

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:
        encoding = "utf-8"
    try:
        return data.decode(encoding), None
    except (UnicodeDecodeError, LookupError):
        text = data.decode("utf-8", errors="replace")
        return text, f"file is not valid {encoding}; undecodable bytes were replaced"


def too_large(text: str, limit: int) -> str | None:
    """The message for a text over `limit` bytes (UTF-8), else None: an editor's unsaved buffer
    gets the same cap as a file read from disk."""
    if len(text) <= limit // 4 or len(text.encode("utf-8", "surrogatepass")) <= limit:
        return None
    return f"file larger than max-file-size ({limit:,} bytes): not analysed"


def undecodable_line(data: bytes) -> int:
    """The 1-based line of the first byte `decode_source` had to replace (1 if none), so its
    warning points at the bad byte rather than at the top of the file."""
    import io
    import tokenize

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        data.decode(encoding)
    except SyntaxError:
        return 1
    except LookupError:
        encoding = "utf-8"
    except UnicodeDecodeError as err:
        return data.count(b"\n", 0, err.start) + 1
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        return data.count(b"\n", 0, err.start) + 1
    return 1


class SourceModule:
    """One parsed file (or an unparsable one, with its syntax error)."""

    def __init__(self, path: str, text: str, name: str, previous: SourceModule | None = None) -> None:
        self.path = path
        self.text = text
        self.name = name
        self.digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
        self.tree: cst.Module | None = None
        self.syntax_error: SyntaxProblem | None = None
        self._positions: dict[cst.CSTNode, CodeRange] | None = None
        self._statements: StatementIndex | None = None
        self._statement_positions: dict[int, dict[cst.CSTNode, CodeRange]] = {}  # by id of the statement
        # Per top-level statement (by id), what `_statements` knows of it: what the next version of
        # the file reuses for the statements it shares with this one (engine/incremental.py), its
        # locations moved by the lines inserted or deleted above it (`_moved`, by id).
        self.parts: dict[int, StatementPart] = {}
        self._moved: dict[int, int] | None = None
        # Per-node facts computed once: decoded literals (libcst re-decodes them on every
        # access), whether a function body yields.
        self.node_cache: dict[cst.CSTNode, object] = {}
        # The SourceRef of each node the evaluator ran, by id (a node's hash is a Python call): one
        # per node, not one per evaluation (530k for torchvision). A ref holds its node, so no id is
        # reused while it is here; per module, since a new version of a file shares nodes (incremental).
        self.refs: dict[int, SourceRef] = {}
        self._lock = threading.Lock()
        self.pieces: Any = False  # engine/incremental.Pieces of `tree`, None if unusable, False: not computed yet
        # Expressions libcst's parser would take minutes on are replaced first (see _elide_pathological).
        parsed_text, self.elided, self.literals = _elide_pathological(path, text)
        self._parsed_as_is = parsed_text == text  # else positions in the tree are not the file's
        try:
            reused = _reparsed(previous, parsed_text) if parsed_text is text and not self.literals else None
            if reused is not None:
                self.tree, self.pieces = reused
                assert previous is not None
                self._carry_over(previous)
            else:
                with fast_parse.parsing():
                    self.tree = cst.parse_module(parsed_text)
                gc_policy.parsed()  # engine/gc_policy.py: the tree out of young collections' scans
        except cst.ParserSyntaxError as err:
            # libcst puts tokenizer errors at 1:1 and parser errors often a line late; Python's
            # own parser says where (and what) the problem is, as the user will see it.
            self.syntax_error = _python_syntax_error(path, parsed_text)
            if self.syntax_error is None:  # valid Python that libcst cannot parse (its limits)
                loc = Location(path, err.raw_line, err.raw_column, err.raw_line, err.raw_column + 1)
                self.syntax_error = SyntaxProblem(
                    f"could not parse this file (Python accepts it; libcst's parser reports: {err.message})", loc)
        except RecursionError:
            loc = Location(path, 1, 0, 1, 0)
            self.syntax_error = SyntaxProblem("file is too deeply nested to parse", loc)
        except Exception as err:  # libcst may raise other errors on odd input
            loc = Location(path, 1, 0, 1, 0)
            self.syntax_error = SyntaxProblem(f"could not parse: {err}", loc)

    def _carry_over(self, previous: SourceModule) -> None:
        """What `previous` knew of the statements this version shares with it: per-node facts
        (of the nodes themselves: decoded literals, whether a body yields) and its statements'
        owner maps (which do not depend on lines). The replaced statements' entries are dropped,
        so the facts do not accumulate over edits."""
        from vramlint.engine.walk import iter_nodes

        assert self.tree is not None and previous.tree is not None
        kept = {id(s) for s in self.tree.body}
        gone = {id(n) for s in previous.tree.body if id(s) not in kept for n in iter_nodes(s)}
        self.node_cache = {k: v for k, v in previous.node_cache.items()
                           if isinstance(k, cst.CSTNode) and not isinstance(k, cst.Module) and id(k) not in gone}
        with previous._lock:  # its index may be in the making on another thread (a report's positions)
            self.parts = {k: v for k, v in previous.parts.items() if k in kept}
        old, new = _piece_lines(previous.pieces, previous.tree), _piece_lines(self.pieces, self.tree)
        if old is not None and new is not None:
            was = {id(stmt): line for stmt, line in zip(previous.tree.body, old)}
            self._moved = {id(stmt): line - was[id(stmt)] for stmt, line in zip(self.tree.body, new) if id(stmt) in was}

    def ref_of(self, node: cst.CSTNode) -> SourceRef:
        """The node's SourceRef, made once (see `refs`)."""
        ref = self.refs.get(id(node))
        if ref is None:
            ref = self.refs[id(node)] = SourceRef(self, node)
        return ref

    def location_of(self, node: cst.CSTNode) -> Location:
        rng: CodeRange | None = None
        if self._positions is None:
            # Statements and definitions' names (what models and findings point at) come from
            # Python's own parser, an expression inside a simple statement from that statement's
            # code alone: libcst's PositionProvider regenerates the whole file (~0.2 s for a
            # large one).
            fast = self._statement_index().locs.get(id(node))
            if fast is not None:
                return fast
            rng = self._position_in_statement(node)
        if rng is None:
            rng = self._position_map().get(node)
        if rng is None:
            return Location(self.path, 1, 0, 1, 0)
        return Location(
            self.path, rng.start.line, rng.start.column, rng.end.line, rng.end.column
        )

    def statement_location(self, node: cst.CSTNode) -> Location | None:
        """The location of the simple statement holding `node` (its own for a class or function
        name), from `ast`: cheap, what editor hints need (a statement's lines), None when the
        trees cannot be matched."""
        index = self._statement_index()
        stmt = index.owner.get(id(node))
        return index.locs.get(id(node) if stmt is None else id(stmt))

    def _position_in_statement(self, node: cst.CSTNode) -> CodeRange | None:
        """The position of a node inside a simple statement or a compound statement's header:
        that code generated alone, from where `ast` puts its start (what PositionProvider would
        say, for a statement's worth of work). None when the statement is not known (or the parsed
        text is not the file's: an elided expression shifts columns)."""
        if not self._parsed_as_is or self.tree is None:
            return None
        index = self._statement_index()
        stmt = index.owner.get(id(node))
        start = index.starts.get(id(stmt)) if stmt is not None else None
        if stmt is None or start is None:
            return None
        with self._lock:
            table = self._statement_positions.get(id(stmt))
            if table is None:
                try:
                    table = _positions_from(self.tree, stmt, start)
                except RecursionError:  # the whole file's positions have the same limit
                    table = {}
                self._statement_positions[id(stmt)] = table
        return table.get(node)

    def _statement_index(self) -> StatementIndex:
        with self._lock:
            if self._statements is None:
                self._statements = _statement_locations(self.path, self.text, self.tree, self.parts, self._moved,
                                                        self.pieces)
            return self._statements

    def _position_map(self) -> dict[cst.CSTNode, CodeRange]:
        with self._lock:
            if self._positions is None:
                if self.tree is None:
                    self._positions = {}
                else:
                    try:
                        wrapper = MetadataWrapper(self.tree, unsafe_skip_copy=True)
                        self._positions = dict(wrapper.resolve(PositionProvider))
                    except RecursionError:
                        self._positions = {}
            return self._positions


def _reparsed(previous: SourceModule | None, text: str) -> tuple[cst.Module, Any] | None:
    """An editor's new version of a file, parsed reusing the previous version's unchanged
    top-level statements (engine/incremental.py): the tree and its pieces, or None."""
    if previous is None or previous.tree is None or previous.elided or previous.literals:
        return None
    from vramlint.engine.incremental import pieces_of, reparse

    if previous.pieces is False:  # its text cut at its statements, once (the first edit after a whole parse)
        previous.pieces = pieces_of(previous.tree, previous.text)
    return reparse(previous.tree, previous.pieces, text) if previous.pieces is not None else None


# Most recently used parses. Bounded: an editor produces a new version of a file per keystroke.
_cache: OrderedDict[tuple[str, str], SourceModule] = OrderedDict()
_cache_lock = threading.Lock()
MAX_CACHED_PARSES = 2048
# ... and at most this many characters of source in all: a parse tree costs ~500 bytes of memory
# per character, so a few large files would otherwise hold gigabytes after their analysis.
MAX_CACHED_CHARS = 8 * 1024 * 1024
_cached_chars = 0


def parse_source(path: str, text: str, name: str) -> SourceModule:
    """Parse `text`, reusing an earlier parse of the same path and content."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    key = (path, digest)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
    if hit is not None and hit.name == name:
        return hit
    with _cache_lock:
        # The version to reuse statements of (engine/incremental.py): the latest that parsed.
        latest = next((m for k, m in reversed(_cache.items()) if k[0] == path and m.tree is not None), None)
    mod = SourceModule(path, text, name, latest)
    with _cache_lock:
        # Older versions of the same file are not asked for again (an editor sends a new text per
        # keystroke): keep the latest two per path (and the latest that parsed, for the next edit
        # to reuse: incremental.py), so memory does not grow with edits.
        versions = [k for k in _cache if k[0] == path]
        parsed = next((k for k in reversed(versions) if _cache[k].tree is not None), None)
        for k in versions[:-1]:
            if k != parsed:
                _uncache(k)
        if key in _cache:
            _uncache(key)
        _cache[key] = mod
        global _cached_chars
        _cached_chars += len(text)
        while len(_cache) > 1 and (len(_cache) > MAX_CACHED_PARSES or _cached_chars > MAX_CACHED_CHARS):
            _uncache(next(iter(_cache)))
    return mod


def cut_for_edits(path: str) -> None:
    """Cut the latest parse of `path` at its top-level statements now, if no edit has yet
    (`_reparsed` does it on the first edit after a whole parse: a codegen of every statement,
    ~25 ms on a 1,500-line file, half an edit's analysis). An editor calls this once a
    result is shown, so that the next keystroke does not pay for it."""
    with _cache_lock:
        latest = next((m for k, m in reversed(_cache.items()) if k[0] == path and m.tree is not None), None)
    if latest is None or latest.tree is None or latest.pieces is not False or latest.elided or latest.literals:
        return
    from vramlint.engine.incremental import pieces_of

    latest.pieces = pieces_of(latest.tree, latest.text)


def _uncache(key: tuple[str, str]) -> None:
    global _cached_chars
    mod = _cache.pop(key)
    _cached_chars -= len(mod.text)
    # Each ref holds its module (a cycle through `refs`): without it, a dropped version (one per
    # edit in an editor) and what it alone holds are freed at once, not by a garbage collection.
    # A ref still held elsewhere (a result's location) keeps working; `refs` only remembers them.
    mod.refs = {}


def _python_syntax_error(path: str, text: str) -> SyntaxProblem | None:
    """The syntax error CPython reports for `text` (message and position), or None if it has none."""
    import ast

    at = text.find("\0")
    if at >= 0:  # CPython reports it without a position
        line = text.count("\n", 0, at) + 1
        col = at - (text.rfind("\n", 0, at) + 1)
        return SyntaxProblem("syntax error: source contains a null byte", Location(path, line, col, line, col + 1))
    try:
        compile(text, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as err:  # IndentationError and TabError included
        line = err.lineno or 1
        col = max((err.offset or 1) - 1, 0)
        end_line, end_col = err.end_lineno or line, (err.end_offset or 0) - 1
        if (end_line, end_col) <= (line, col):
            end_line, end_col = line, col + 1
        return SyntaxProblem(f"syntax error: {err.msg}", Location(path, line, col, end_line, end_col))
    except (ValueError, RecursionError, MemoryError):
        pass
    return None


# ---------------------------------------------------------------------------------------------
# Pathological expressions. libcst's native parser is super-linear on long left-recursive chains
# (`1+1+...`, `a.b.b...`, `f()()...`: ~2s for 4,000 terms, minutes for 50,000) and on deep
# bracket nesting (~3s for 1,000 nested lists, ~40s for 2,000 nested calls), holding the GIL all
# the while, so no deadline can interrupt it. Such expressions never occur in real model code
# (CPython itself refuses more than 200 nested brackets), so before parsing they are replaced by a
# call that evaluates to a located Unknown, keeping every line where it was.

ELIDED_NAME = "__vramlint_elided__"  # a loader builtin: returns Unknown(its argument)
# Likewise a display (list, tuple, dict, set) of over MAX_DISPLAY elements: libcst takes ~20 s for
# a 1 MB list of numbers. One of constants is read by `ast.literal_eval` instead (a fraction of a
# second) and stands in the text as a call of this builtin, which returns a copy of its value
# (SourceModule.literals[i]); any other becomes an Unknown like the expressions above.
LITERAL_NAME = "__vramlint_literal__"
MAX_DISPLAY = 10_000
_LARGE_DISPLAY = "literal too large to analyse"
MAX_NESTING = 200  # brackets; CPython's own limit
MAX_CHAIN = 1_000  # operators in one run of an expression
_LONG_LINE = 1_000  # characters: shorter lines, in runs under _LONG_RUN, cannot be slow to parse
_LONG_RUN = 100  # consecutive lines that continue an expression (end or start with an operator)
_CONT_END = frozenset("+-*/%@&|^~.([{\\,")
_CONT_START = frozenset("+-*/%@&|^~.)]}([{")
_CHAIN_OPS = frozenset("+ - * / // % @ & | ^ << >> ** ~ .".split())
_SEPARATORS = frozenset(", : ; = -> := += -= *= /= //= %= @= &= |= ^= <<= >>= **=".split())


def _elide_pathological(path: str, text: str) -> tuple[str, list[SyntaxProblem], list[Any]]:
    """`text` with over-long chains, over-deep nesting and over-large displays replaced, what was
    replaced (but displays of constants, whose values are kept), and those values."""
    if len(text) < _LONG_LINE or not _maybe_pathological(text) or _under_every_limit(text):
        return text, [], []  # the common case, decided without tokenizing
    regions = _pathological_regions(text)
    while regions:
        new_text, problems, literals = _replace_regions(path, text, regions)
        # A region the token scan got wrong must not turn valid code into a syntax error: drop
        # it (the parser will just be slow on it).
        bad = _syntax_error_line(new_text)
        broken = [r for r in regions if bad is not None and r[0][0] <= bad <= r[1][0]]
        if not broken:
            return new_text, problems, literals
        regions = [r for r in regions if r not in broken]
    return text, [], []


Region = tuple[tuple[int, int], tuple[int, int], str]  # start, end (line, column), reason


def _replace_regions(path: str, text: str, regions: list[Region]) -> tuple[str, list[SyntaxProblem], list[Any]]:
    offsets = [0]
    for line in text.split("\n"):  # the tokenizer's lines
        offsets.append(offsets[-1] + len(line) + 1)
    out: list[str] = []
    problems: list[SyntaxProblem] = []
    literals: list[Any] = []
    done = 0
    for start, end, reason in regions:
        a, b = offsets[start[0] - 1] + start[1], offsets[end[0] - 1] + end[1]
        if a < done:
            continue  # inside a region already replaced
        value = _constant(text[a:b]) if reason.startswith(_LARGE_DISPLAY) else MISSING_VALUE
        if value is not MISSING_VALUE:
            call = f"{LITERAL_NAME}({len(literals)})"
            literals.append(value)
        else:
            call = f"{ELIDED_NAME}({reason!r})"
        newlines = end[0] - start[0]
        if newlines:  # same lines as before, and the rest of the last line at its old column
            repl = f"({call}" + "\n" * newlines + " " * max(end[1] - 1, 0) + ")"
        else:
            repl = f"({call}" + " " * max(b - a - len(call) - 2, 0) + ")"
        out += [text[done:a], repl]
        done = b
        if not call.startswith(LITERAL_NAME):
            problems.append(SyntaxProblem(reason, Location(path, start[0], start[1], end[0], end[1])))
    out.append(text[done:])
    return "".join(out), problems, literals


MISSING_VALUE: Any = object()


def _constant(text: str) -> Any:
    """The value of a display of constants, else MISSING_VALUE."""
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return MISSING_VALUE


def _syntax_error_line(text: str) -> int | None:
    import ast

    try:
        compile(text, "<elided>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as err:
        return err.lineno
    except (ValueError, RecursionError, MemoryError):
        pass
    return None


def _under_every_limit(text: str) -> bool:
    """Whether the whole text has too few of what each region counts for any region to pass its
    limit: characters over-count tokens (an operator has one or two, a string may hold some), so
    this is safe. It spares the tokenizer a file that is mostly a long list of strings (torchvision's
    `_meta.py`: 23 ms), which `_maybe_pathological`'s run of continuation lines lets through."""
    chained = sum(map(text.count, "+-*/%@&|^~.([{<>"))  # operators, and calls and subscripts
    nesting = text.count("(") + text.count("[") + text.count("{")
    keywords = sum(map(text.count, _EXPR_KEYWORD_TUPLE))
    return chained <= MAX_CHAIN and nesting <= MAX_NESTING and keywords <= MAX_CHAIN and text.count(",") < MAX_DISPLAY


def _maybe_pathological(text: str) -> bool:
    """A cheap over-approximation: a very long line, or a long run of continuation lines."""
    run = 0
    for line in text.splitlines():
        if len(line) >= _LONG_LINE:
            return True
        s = line.strip()
        if s and (s[-1] in _CONT_END or s[0] in _CONT_START
                  or (s.startswith(_EXPR_KEYWORD_TUPLE) or s.endswith(_EXPR_KEYWORD_TUPLE)
                      or s[-1] == ":" and "lambda" in s) and _keyword_edge(s)):
            run += 1
            if run >= _LONG_RUN:
                return True
        else:
            run = 0
    return False


def _keyword_edge(s: str) -> bool:
    """Whether a stripped line starts or ends with a keyword that nests an expression to its right
    (`not`, `lambda ...:`, `if`, `else`, `await`): 20,000 lines of `not` or `lambda:` inside one
    pair of brackets took libcst's parser minutes, and its stack. (Asked only of a line that
    starts or ends with one's letters.)"""
    first, last = s.split(None, 1)[0], s.rsplit(None, 1)[-1]
    return first.rstrip(":(") in _EXPR_KEYWORDS or last in _EXPR_KEYWORDS or (first.startswith("lambda") and s[-1] == ":")


_EXPR_KEYWORDS = frozenset(("lambda", "if", "else", "not", "await"))  # nest to the right
_EXPR_KEYWORD_TUPLE = tuple(sorted(_EXPR_KEYWORDS))  # (for str.startswith / endswith)
_OPERANDS = frozenset(("True", "False", "None"))


class _Frame:
    """One bracket level of a logical line (the line itself at the bottom)."""

    __slots__ = ("open", "region_start", "ops", "start", "kws", "kstart", "kend", "items", "display")

    def __init__(self, open_tok: Any = None, region_start: tuple[int, int] | None = None) -> None:
        self.open = open_tok
        self.region_start = region_start  # where an expression containing this group begins
        self.ops = 0  # operators in the current run (between separators)
        self.start: tuple[int, int] | None = None  # where that run began
        self.kws = 0  # expression keywords since the last `,` / `=` (`lambda: lambda: ...`)
        self.kstart: tuple[int, int] | None = None
        self.kend: tuple[int, int] | None = None  # the end of the last token but a `:`
        self.items = 0  # commas directly inside this group
        self.display = False  # a list, tuple, dict or set display (not a call or subscript)


def _pathological_regions(text: str) -> list[Region]:
    """Each run of over MAX_CHAIN operators (or right-nesting keywords) between separators, and
    the outermost expression around each bracket group nested over MAX_NESTING deep. Found with
    the tokenizer, so strings and comments do not count."""
    import io
    import keyword
    import tokenize

    regions: list[Region] = []
    frames = [_Frame()]
    deep = False  # the current logical line nests too deeply
    deepest = 0
    anchor = 1  # the depth of the group replaced when it does: 2 in `def f(a=[[...]]):`
    line_start = True
    prev: Any = None

    def end_ops(f: _Frame) -> None:
        if f.ops > MAX_CHAIN and f.start is not None and prev is not None:
            regions.append((f.start, prev.end, f"expression too long to analyse ({f.ops:,} operators)"))
        f.ops, f.start = 0, None

    def end_kws(f: _Frame) -> None:
        if f.kws > MAX_CHAIN and f.kstart is not None and f.kend is not None:
            regions.append((f.kstart, f.kend, f"expression nested too deeply to analyse ({f.kws:,} levels)"))
        f.kws, f.kstart, f.kend = 0, None, None

    skip = (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            kind, s = tok.type, tok.string
            if kind in skip:
                continue
            if kind in (tokenize.NEWLINE, tokenize.ENDMARKER):
                for f in frames:
                    end_ops(f)
                    end_kws(f)
                frames, deep, deepest, anchor, line_start = [_Frame()], False, 0, 1, True
                prev = tok
                continue
            f = frames[-1]
            is_kw = kind == tokenize.NAME and keyword.iskeyword(s) and s not in _OPERANDS
            if line_start and s in ("def", "class"):
                anchor = 2  # replace a default / base, not the parameter list
            if kind == tokenize.OP and s in "([{":
                trailer = prev is not None and not line_start and (
                    prev.string in ")]}" or prev.type in (tokenize.NUMBER, tokenize.STRING)
                    or (prev.type == tokenize.NAME and not keyword.iskeyword(prev.string)))
                if trailer:
                    f.ops += 1  # a call or subscript continues the chain
                if f.start is None:
                    f.start = tok.start
                if f.kstart is None:
                    f.kstart = tok.start
                frames.append(_Frame(tok, f.start if trailer else tok.start))
                frames[-1].display = not trailer
                deepest = max(deepest, len(frames) - 1)
                deep = deep or len(frames) - 1 > MAX_NESTING
            elif kind == tokenize.OP and s in ")]}":
                if len(frames) > 1:
                    end_ops(f)
                    end_kws(f)
                    group = frames.pop()
                    if group.display and group.items >= MAX_DISPLAY:
                        n = group.items + (prev is not None and prev.string != ",")
                        regions.append((group.open.start, tok.end, f"{_LARGE_DISPLAY} ({n:,} elements)"))
                    if deep and len(frames) == anchor and group.region_start is not None:
                        regions.append((group.region_start, tok.end,
                                        f"expression nested too deeply to analyse ({deepest:,} levels)"))
                        deep = False
                    frames[-1].kend = tok.end
            elif kind == tokenize.OP and s in _SEPARATORS:
                end_ops(f)
                if s == ",":
                    f.items += 1
                if s != ":":
                    end_kws(f)
            elif is_kw:
                end_ops(f)
                if s in _EXPR_KEYWORDS and not line_start:
                    f.kws += 1
                    if f.kstart is None:
                        f.kstart = tok.start
            else:
                if f.start is None:
                    f.start = tok.start
                if f.kstart is None:
                    f.kstart = tok.start
                if kind == tokenize.OP and s in _CHAIN_OPS:
                    f.ops += 1
            if s != ":" and not is_kw and frames[-1] is f:
                f.kend = tok.end
            line_start = False
            prev = tok
    except (tokenize.TokenError, SyntaxError):
        pass  # unfinished regions are left alone: the parser will report the error
    regions.sort(key=lambda r: (r[0], (-r[1][0], -r[1][1])))  # an outer region before those inside it
    return regions


_DEF_KEYWORD = re.compile(r"\b(?:class|def)\s+")


def _defined_name_column(line: str, name: str) -> int | None:
    """Where `name` follows `class` or `def` in the line, as a whole word (one pattern for every
    name: a pattern per name was compiled for each definition of a file)."""
    for m in _DEF_KEYWORD.finditer(line):
        end = m.end() + len(name)
        if line.startswith(name, m.end()) and (end == len(line) or not (line[end].isalnum() or line[end] == "_")):
            return m.end()
    return None


def _positions_from(tree: cst.Module, stmt: cst.CSTNode, start: CodeStart) -> dict[cst.CSTNode, CodeRange]:
    """libcst's positions of the nodes of a simple statement, or of a compound statement's
    header, its code generated alone from `start` on. That code depends on what is around it
    only through its block's indentation (which a continuation line inside brackets may repeat)."""
    provider = PositionProvider()
    state = PositionProvidingCodegenState(default_indent=tree.default_indent, default_newline=tree.default_newline,
                                          provider=provider, line=start.line, column=start.column,
                                          indent_tokens=[start.indent] if start.indent else [])
    if isinstance(stmt, cst.BaseSmallStatement):
        stmt._codegen(state)
    else:  # the header alone: no comment lines above it, no body
        empty = cst.IndentedBlock(body=())
        header = stmt.with_changes(leading_lines=(), body=empty, **({"orelse": None} if hasattr(stmt, "orelse") else {}))
        header._codegen(state, **({"is_elif": True} if start.elif_ else {}))
    return {n: r for n, r in provider._computed.items() if isinstance(r, CodeRange)}


@dataclass(frozen=True)
class CodeStart:
    """Where a statement's generated code starts (for a header: its first line, at column 0,
    comment lines above it left out), the indentation of its block, and whether it is an `elif`."""

    line: int
    column: int
    indent: str
    elif_: bool = False


@dataclass
class StatementIndex:
    """Simple statements' and definitions' names' locations (by id), the statement each node
    inside a simple statement or a compound statement's header belongs to, and where each of
    those statements' code starts."""

    locs: dict[int, Location] = field(default_factory=dict)
    owner: dict[int, cst.CSTNode] = field(default_factory=dict)
    starts: dict[int, CodeStart] = field(default_factory=dict)




@dataclass
class StatementPart:
    """What the statement index found of one top-level statement: its nodes' owners (which do not
    depend on lines), its statements' locations and code starts, keyed as StatementIndex's."""

    stmt: cst.CSTNode
    owner: dict[int, cst.CSTNode]
    locs: dict[int, Location]
    starts: dict[int, CodeStart]

    def moved(self, lines: int) -> StatementPart:
        """The same statement `lines` lines further down."""
        if not lines:
            return self
        return StatementPart(self.stmt, self.owner,
                             {k: replace(v, line=v.line + lines, end_line=v.end_line + lines) for k, v in self.locs.items()},
                             {k: replace(v, line=v.line + lines) for k, v in self.starts.items()})


def _piece_lines(pieces: Any, tree: cst.Module) -> list[int] | None:
    """The line each top-level statement's piece (engine/incremental.Pieces: the statement with
    the blank lines and comments libcst gives it) starts at; None without pieces."""
    if not pieces or len(pieces.statements) + 1 != len(tree.body):
        return None
    line = 1 + pieces.header.count("\n")
    out = []
    for piece in pieces.statements:
        out.append(line)
        line += piece.count("\n")
    return [*out, line]


def _statement_locations(path: str, text: str, tree: cst.Module | None,
                         parts: dict[int, StatementPart] | None = None, moved: dict[int, int] | None = None,
                         pieces: Any = None) -> StatementIndex:
    """Every simple statement's location (and class/function names'), matching libcst's
    statements with `ast`'s block by block; for every node inside a simple statement or a
    compound statement's header, that statement (`owner`); and where each of those statements'
    code starts. `parts`: what the previous version knew of the top-level statements this one
    shares with it (their owner maps are reused; with `moved`, the lines each moved by, and this
    version's `pieces`, their locations too: only the statements parsed again are given to `ast`,
    an editor's edit does not parse the whole file twice); then updated with this version's."""
    import ast

    from vramlint.engine.walk import child_nodes, iter_nodes

    if tree is None:
        return StatementIndex()
    known = parts if parts is not None else {}
    reused = _moved_parts(tree, known, moved, pieces)
    try:
        if reused is not None:
            first, region, _ = reused
            module = ast.parse(region)
            ast.increment_lineno(module, _piece_lines(pieces, tree)[first] - 1)  # type: ignore[index]
        else:
            module = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return StatementIndex()
    lines = text.splitlines()

    def col(line: int, byte_col: int) -> int:
        s = lines[line - 1] if 0 < line <= len(lines) else ""
        return byte_col if s.isascii() else len(s.encode("utf-8")[:byte_col].decode("utf-8", "replace"))

    index = StatementIndex()
    # Those of the top-level statement being matched (then of all, for `a = 1; b = 2` below).
    locs, starts = index.locs, index.starts
    owner: dict[int, cst.CSTNode] = index.owner
    fill = True  # whether `owner` is still to be filled for that statement

    def loc_of(a: ast.AST) -> Location:
        end = getattr(a, "end_lineno", None) or a.lineno  # type: ignore[attr-defined]
        return Location(path, a.lineno, col(a.lineno, a.col_offset), end,  # type: ignore[attr-defined]
                        col(end, getattr(a, "end_col_offset", 0) or 0))

    def block(body: Any) -> list[cst.CSTNode]:
        if isinstance(body, cst.IndentedBlock):
            return list(body.body)
        if isinstance(body, cst.SimpleStatementSuite):
            return list(body.body)
        return []

    def match(stmts: Sequence[cst.CSTNode], nodes: list[ast.stmt], indent: str) -> bool:
        i = 0
        for stmt in stmts:
            smalls = stmt.body if isinstance(stmt, cst.SimpleStatementLine) else \
                [stmt] if isinstance(stmt, cst.BaseSmallStatement) else None
            if smalls is not None:
                for small in smalls:
                    if i >= len(nodes):
                        return False
                    loc = locs[id(small)] = loc_of(nodes[i])
                    starts[id(small)] = CodeStart(loc.line, loc.column, indent)
                    if fill:
                        for n in iter_nodes(small):
                            owner[id(n)] = small
                    i += 1
                continue
            if i >= len(nodes):
                return False
            a = nodes[i]
            i += 1
            if not pair(stmt, a, indent):
                return False
        return i == len(nodes)

    def header(stmt: cst.CSTNode, a: ast.stmt, indent: str, elif_: bool) -> None:
        """Index the nodes of a compound statement's header (from its first line: its first
        decorator's `@`, else its keyword)."""
        decorators = getattr(a, "decorator_list", None)
        line = decorators[0].lineno if decorators else a.lineno
        while decorators and line > 1 and not lines[line - 1].lstrip().startswith("@"):
            line -= 1  # a decorator's expression may start on a later line: `@(\n  name)`
        own: Sequence[cst.Decorator] = getattr(stmt, "decorators", ())
        if decorators and own:  # comment lines the first decorator holds (libcst gives them to the def)
            line -= len(own[0].leading_lines)
        starts[id(stmt)] = CodeStart(line, 0, indent, elif_)
        if not fill:  # the statement's owners are those of the previous version (see `owners`)
            return
        rest = [getattr(stmt, name, None) for name in ("body", "orelse", "name")]
        for part in child_nodes(stmt):
            if not any(part is r for r in rest):
                for n in iter_nodes(part):
                    owner[id(n)] = stmt

    def pair(stmt: cst.CSTNode, a: ast.stmt, indent: str, elif_: bool = False) -> bool:
        def sub(body: Any, nodes: list[ast.stmt]) -> bool:
            """The statements of a block against `ast`'s, with the block's indentation (what
            libcst generates for a continuation line of theirs that repeats it)."""
            step = (tree.default_indent if body.indent is None else body.indent) \
                if isinstance(body, cst.IndentedBlock) else ""
            return match(block(body), nodes, indent + step)

        if isinstance(stmt, (cst.ClassDef, cst.FunctionDef)):
            if not isinstance(a, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) or a.name != stmt.name.value:
                return False
            line = lines[a.lineno - 1] if a.lineno <= len(lines) else ""
            at = _defined_name_column(line, a.name)
            if at is not None:
                locs[id(stmt.name)] = Location(path, a.lineno, at, a.lineno, at + len(a.name))
            header(stmt, a, indent, False)
            return sub(stmt.body, a.body)
        if isinstance(stmt, cst.If) and isinstance(a, ast.If):
            header(stmt, a, indent, elif_)
            if not sub(stmt.body, a.body):
                return False
            orelse = stmt.orelse
            if isinstance(orelse, cst.If):
                return len(a.orelse) == 1 and pair(orelse, a.orelse[0], indent, True)
            if isinstance(orelse, cst.Else):
                return sub(orelse.body, a.orelse)
            return not a.orelse
        if isinstance(stmt, (cst.For, cst.While)) and isinstance(a, (ast.For, ast.AsyncFor, ast.While)):
            if isinstance(stmt, cst.For) == isinstance(a, (ast.For, ast.AsyncFor)):
                header(stmt, a, indent, False)
            return sub(stmt.body, a.body) and sub(stmt.orelse.body if stmt.orelse is not None else None, a.orelse)
        if isinstance(stmt, cst.With) and isinstance(a, (ast.With, ast.AsyncWith)):
            header(stmt, a, indent, False)
            return sub(stmt.body, a.body)
        if isinstance(stmt, cst.Try) and isinstance(a, ast.Try):
            ok = sub(stmt.body, a.body) and len(stmt.handlers) == len(a.handlers)
            ok = ok and all(sub(h.body, ah.body) for h, ah in zip(stmt.handlers, a.handlers))
            ok = ok and sub(stmt.orelse.body if stmt.orelse else None, a.orelse)
            return ok and sub(stmt.finalbody.body if stmt.finalbody else None, a.finalbody)
        return True  # other compound statements: their inner statements are simply not indexed

    found: dict[int, StatementPart] = {}

    def index_statements(stmts: Sequence[cst.CSTNode], nodes: list[ast.stmt]) -> bool:
        nonlocal fill, owner, locs, starts
        for stmt, a in zip(stmts, nodes):
            hit = known.get(id(stmt))
            fill = hit is None or hit.stmt is not stmt
            owner, locs, starts = ({} if fill else hit.owner), {}, {}  # type: ignore[union-attr]
            if not match([stmt], [a], ""):
                return False
            found[id(stmt)] = StatementPart(stmt, owner, locs, starts)
        return True

    if reused is not None:
        first, region, parts_kept = reused
        run = list(tree.body)[first:first + len(tree.body) - len(parts_kept)]  # the kept parts are outside it
        if len(run) != len(module.body) or not index_statements(run, module.body):
            return StatementIndex()
        found.update(parts_kept)
    else:
        if len(tree.body) != len(module.body) and any(isinstance(s, cst.SimpleStatementLine) and len(s.body) > 1
                                                      for s in tree.body):
            if not match(list(tree.body), module.body, ""):  # `a = 1; b = 2`: one libcst statement, two of ast's
                return StatementIndex()
            return index
        if len(tree.body) != len(module.body) or not index_statements(tree.body, module.body):
            return StatementIndex()
    if parts is not None:
        parts.clear()
        parts.update(found)
    for part in found.values():
        index.owner.update(part.owner)
        index.locs.update(part.locs)
        index.starts.update(part.starts)
    return index


def _moved_parts(tree: cst.Module, known: dict[int, StatementPart], moved: dict[int, int] | None,
                 pieces: Any) -> tuple[int, str, dict[int, StatementPart]] | None:
    """For an edited version whose top-level statements but one run are the previous version's
    (known, with the lines each moved by): the run's first statement, its text (from `pieces`),
    and the other statements' parts, moved. None where the whole file is to be indexed."""
    if moved is None or not pieces or len(pieces.statements) + 1 != len(tree.body):
        return None
    new = [i for i, stmt in enumerate(tree.body)
           if id(stmt) not in moved or id(stmt) not in known or known[id(stmt)].stmt is not stmt]
    if not new or new[-1] >= len(pieces.statements):  # nothing new, or the tail: index it all
        return None
    first, last = new[0], new[-1]
    kept = {id(stmt): known[id(stmt)].moved(moved[id(stmt)])
            for i, stmt in enumerate(tree.body) if not first <= i <= last}
    return first, "".join(pieces.statements[first:last + 1]), kept
