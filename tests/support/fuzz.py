"""Random mutations of the repository's own model files, for tests/test_fuzz.py.

`cases(seed, n)` draws `n` mutated sources from a fixed seed: the same cases on every machine.
Each case applies one to three mutations of these kinds, at the token level (tokenize) so that
the text stays plausible enough to reach the evaluator often:

- `delete-token`: one token removed (a name, an operator, a bracket, a number, a string);
- `swap-names`: two identifiers of the file exchanged everywhere (`self.fc1` <-> `nn`...);
- `replace-name`: one occurrence of an identifier replaced by another of the file;
- `duplicate-line`, `delete-line`: one line repeated or dropped (indentation kept as it is);
- `change-number`: one number literal replaced by 0, -1, a huge number, a float, a negative float;
- `truncate`: the file cut at a random character.

Run as a module (`python -m tests.support.fuzz`), it is the worker the test drives: it reads one
case per line (JSON) on stdin, analyses it as `vramlint check` would and renders every output
format, and answers one JSON line per case: "ok", or "crash" with the traceback.
"""

from __future__ import annotations

import ast
import io
import json
import keyword
import random
import sys
import token
import tokenize
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# Numbers a mutation puts in place of a literal: the edge cases of shapes and counts.
NUMBERS = ("0", "-1", "1", "2", "3", "10**12", "99999999999999999999999999", "0.5", "-2.5", "1e308", "7")


@dataclass(frozen=True)
class Case:
    index: int
    path: str  # the original file (analysed under its own path, so its imports resolve)
    mutations: tuple[str, ...]  # what was done, in order, for the failure message
    text: str

    def parses(self) -> bool:
        try:
            ast.parse(self.text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return False
        return True


def corpus() -> list[Path]:
    """The repository's own model files: examples, test fixtures and the GPU benchmark models."""
    files = [*ROOT.glob("examples/*.py"), *ROOT.glob("tests/fixtures/**/*.py"),
             *ROOT.glob("benchmarks/gpu/models/*.py")]
    return sorted(f for f in files if f.is_file())


def _tokens(text: str) -> list[tokenize.TokenInfo]:
    """The tokens of `text`, as far as tokenize gets (a mutated text may stop tokenizing)."""
    out: list[tokenize.TokenInfo] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            out.append(tok)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


def _offsets(text: str) -> list[int]:
    """Character offset of the start of each line (1-based rows, as tokenize counts)."""
    starts = [0, 0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _span(starts: list[int], tok: tokenize.TokenInfo) -> tuple[int, int]:
    return starts[tok.start[0]] + tok.start[1], starts[tok.end[0]] + tok.end[1]


def _replace(text: str, edits: list[tuple[int, int, str]]) -> str:
    for a, b, new in sorted(edits, reverse=True):
        text = text[:a] + new + text[b:]
    return text


def _names(toks: list[tokenize.TokenInfo]) -> list[tokenize.TokenInfo]:
    return [t for t in toks if t.type == token.NAME and not keyword.iskeyword(t.string)]


def delete_token(rng: random.Random, text: str) -> tuple[str, str] | None:
    toks = [t for t in _tokens(text) if t.type in (token.NAME, token.OP, token.NUMBER, token.STRING)]
    if not toks:
        return None
    tok = rng.choice(toks)
    a, b = _span(_offsets(text), tok)
    return _replace(text, [(a, b, "")]), f"delete-token {tok.string[:20]!r} at line {tok.start[0]}"


def swap_names(rng: random.Random, text: str) -> tuple[str, str] | None:
    toks = _names(_tokens(text))
    distinct = sorted({t.string for t in toks})
    if len(distinct) < 2:
        return None
    x, y = rng.sample(distinct, 2)
    starts = _offsets(text)
    edits = [(*_span(starts, t), y if t.string == x else x) for t in toks if t.string in (x, y)]
    return _replace(text, edits), f"swap-names {x} <-> {y}"


def replace_name(rng: random.Random, text: str) -> tuple[str, str] | None:
    toks = _names(_tokens(text))
    distinct = sorted({t.string for t in toks})
    if len(distinct) < 2:
        return None
    tok = rng.choice(toks)
    new = rng.choice([n for n in distinct if n != tok.string])
    a, b = _span(_offsets(text), tok)
    return _replace(text, [(a, b, new)]), f"replace-name {tok.string} -> {new} at line {tok.start[0]}"


def duplicate_line(rng: random.Random, text: str) -> tuple[str, str] | None:
    lines = text.splitlines(keepends=True)
    if not lines:
        return None
    i = rng.randrange(len(lines))
    line = lines[i] if lines[i].endswith("\n") else lines[i] + "\n"
    return "".join(lines[:i + 1] + [line] + lines[i + 1:]), f"duplicate-line {i + 1}"


def delete_line(rng: random.Random, text: str) -> tuple[str, str] | None:
    lines = text.splitlines(keepends=True)
    if not lines:
        return None
    i = rng.randrange(len(lines))
    return "".join(lines[:i] + lines[i + 1:]), f"delete-line {i + 1}"


def change_number(rng: random.Random, text: str) -> tuple[str, str] | None:
    toks = [t for t in _tokens(text) if t.type == token.NUMBER]
    if not toks:
        return None
    tok = rng.choice(toks)
    new = rng.choice([n for n in NUMBERS if n != tok.string])
    a, b = _span(_offsets(text), tok)
    return _replace(text, [(a, b, new)]), f"change-number {tok.string} -> {new} at line {tok.start[0]}"


def truncate(rng: random.Random, text: str) -> tuple[str, str] | None:
    if not text:
        return None
    at = rng.randrange(len(text))
    return text[:at], f"truncate at character {at} (line {text.count(chr(10), 0, at) + 1})"


# Token-level mutations are drawn more often: they are the plausible, evaluator-reaching ones.
MUTATIONS = (
    (delete_token, 3), (swap_names, 2), (replace_name, 3), (duplicate_line, 2),
    (delete_line, 2), (change_number, 4), (truncate, 1),
)


def cases(seed: int, n: int) -> list[Case]:
    rng = random.Random(seed)
    files = corpus()
    texts = {f: f.read_text(encoding="utf-8") for f in files}
    kinds = [m for m, _ in MUTATIONS]
    weights = [w for _, w in MUTATIONS]
    out: list[Case] = []
    while len(out) < n:
        f = rng.choice(files)
        text = texts[f]
        done: list[str] = []
        for mutate in rng.choices(kinds, weights, k=rng.choice((1, 1, 2, 3))):
            step = mutate(rng, text)
            if step is not None:
                text, what = step
                done.append(what)
        if done:
            out.append(Case(len(out), str(f), tuple(done), text))
    return out


# ---------------------------------------------------------------------- the worker


def _strict_json(document: str) -> None:
    """json.loads that also refuses NaN and Infinity (Python writes them; JSON has no such thing)."""
    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    json.loads(document, parse_constant=refuse)


def check(path: str, text: str) -> bool:
    """Analyse as `vramlint check` (memory on) and render every output; True if the text parsed.

    Any exception escaping here is a crash of vramlint."""
    import pickle

    import vramlint
    from vramlint.analysis.results import FileAnalysis, detached
    from vramlint.render import github, json_output, sarif
    from vramlint.render import text as text_render
    from vramlint.render.explain import explain
    from vramlint.render.report import report

    result = vramlint.analyze_source(path, text, vramlint.Settings(memory=True))
    if not isinstance(result, FileAnalysis):
        raise TypeError(f"analyze_source returned {type(result).__name__}")
    text_render.render([result])
    github.render([result])
    _strict_json(json.dumps(json_output.document([result], layers=True)))
    _strict_json(sarif.render([result]))
    for m in result.models:
        report(path, m, width=120)
        explain(path, m)
    pickle.loads(pickle.dumps(detached(result)))  # what `check --jobs` sends between processes
    if INTERNAL_ERRORS_MET:  # the engine kept going, but a rule of vramlint broke on this input
        raise AssertionError("; ".join(dict.fromkeys(INTERNAL_ERRORS_MET)))
    return not result.errors


# What Evaluator.internal_error turned into Unknowns during the case: a rule's bug survives as a
# located unknown for the user, but the fuzz counts it (the value may be lost on the way out).
INTERNAL_ERRORS_MET: list[str] = []


def _record_internal_errors() -> None:
    from vramlint.engine.evaluator import Evaluator

    original = Evaluator.internal_error

    def recorded(self: Evaluator, err: Exception, ref: Any) -> Any:
        u = original(self, err, ref)
        where = f" at {u.location}" if u.location is not None else ""
        INTERNAL_ERRORS_MET.append(u.reason + where + "\n" + "".join(traceback.format_exception(err, limit=-4)))
        return u

    Evaluator.internal_error = recorded  # type: ignore[method-assign]


def main() -> None:
    _record_internal_errors()
    for line in sys.stdin:
        req = json.loads(line)
        INTERNAL_ERRORS_MET.clear()
        try:
            parsed = check(req["path"], req["text"])
            reply = {"status": "ok", "analysed": parsed}
        except BaseException:  # report everything, even SystemExit or RecursionError
            reply = {"status": "crash", "detail": traceback.format_exc(limit=-8)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


def compiles(text: str) -> bool:
    """Whether Python accepts `text` (an editor's version may not: the next edit is then of the
    last one that did)."""
    try:
        compile(text, "<edit>", "exec", dont_inherit=True)
    except SyntaxError:
        return False
    return True


if __name__ == "__main__":
    main()

