"""Tokenizers, offline and without their vocabulary: what a training script's token batches need.

`AutoTokenizer.from_pretrained(name)` and `LlamaTokenizer.from_pretrained(name)`... return
vramlint's tokenizer: its special tokens (`pad_token`, `eos_token`...), `model_max_length` and
`padding_side` read from the checkpoint's tokenizer_config.json when it is at hand (a local folder,
the Hugging Face cache, `tokenizer_config = "..."` in the checkpoint's table), else unknown. No
vocabulary is read: a call's token counts follow transformers' padding and truncation rules
(`PreTrainedTokenizerBase._get_padding_truncation_strategies`, tokenization_utils_base.py:2336-2415
in transformers 5.17.0), never the text:

- `padding="max_length"`: exactly `max_length` tokens (else `model_max_length`).
- `truncation=True` (or only `max_length=`, which turns truncation on) with `padding=True`,
  `"longest"` or none: at most `max_length` tokens; counted as `max_length`, an upper bound that
  the source text says, since the estimate must err towards "does not fit".
- no truncation: the text's own length, unknown: counted as `model_max_length` (or
  UNTRUNCATED_TOKENS when that is unknown), said so; run_clm's `group_texts` then chunks the
  tokens to its `block_size`, whatever that length.

The ids are zeros; the attention mask ones. With `return_tensors="pt"` the values are int64
`(texts, tokens)` tensors, else lists of ints, as transformers returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vramlint.engine.provenance import sourced
from vramlint.engine.values import ClassValue, Instance, NativeFunction, Property, Unknown
from vramlint.frontends.torch.tensors import TensorValue
from vramlint.frontends.transformers.pretrained import HUB_KWARGS, locate_config, read_config
from vramlint.frontends.transformers.token_rows import TokenLength, note_tokens, where

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator

TOKENIZER_CONFIG = "tokenizer_config.json"
# transformers' LARGE_INTEGER (tokenization_utils_base.py): a model_max_length above it means "no limit".
LARGE_INTEGER = int(1e20)
# Tokens counted for an untruncated text when the tokenizer's model_max_length is not known.
UNTRUNCATED_TOKENS = 2048
SPECIAL_TOKENS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
_CALL_PARAMS = ("text", "text_pair", "text_target", "text_pair_target", "add_special_tokens", "padding",
                "truncation", "max_length")


def _token_text(v: Any) -> Any:
    """A special token of a tokenizer_config.json: a string, or an AddedToken's dict (`content`)."""
    if isinstance(v, dict):
        v = v.get("content")
    return v if isinstance(v, str) else None


def _attributes(ev: Evaluator, name: Any, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The tokenizer's attributes and a sentence saying where they were read."""
    options = {k: kwargs.get(k) if isinstance(kwargs.get(k), str) else None for k in ("revision", "cache_dir", "subfolder")}
    found = locate_config(name, ev.loader.environment, ev.loader.model_tables, options["revision"],
                          options["cache_dir"], options["subfolder"] or "", TOKENIZER_CONFIG, "tokenizer_config") \
        if isinstance(name, str) else f"the tokenizer's name is not known ({name!r})"
    data = read_config(found) if not isinstance(found, str) else found
    if isinstance(data, str):
        why = Unknown(f"the tokenizer of `{name}`: {data}", ev.current_ref)
        attrs: dict[str, Any] = {k: why for k in (*SPECIAL_TOKENS, "model_max_length", "chat_template")}
        attrs["padding_side"] = "right"
        return attrs, f"no tokenizer_config.json for `{name}`"
    assert not isinstance(found, str)
    source = f"{found.path} ({found.source})"
    attrs = {k: _token_text(data.get(k)) for k in SPECIAL_TOKENS}
    mml = data.get("model_max_length")
    attrs["model_max_length"] = sourced(mml, f"model_max_length of {source}") \
        if isinstance(mml, int) and not isinstance(mml, bool) else (int(mml) if isinstance(mml, float) else LARGE_INTEGER)
    attrs["padding_side"] = data.get("padding_side") if data.get("padding_side") in ("left", "right") else "right"
    attrs["chat_template"] = data.get("chat_template") if isinstance(data.get("chat_template"), str) else None
    return attrs, source


def _tokenizer_class(ev: Evaluator, name: str) -> ClassValue:
    cache: dict[str, ClassValue] = ev.loader.frontend_state.setdefault("hf.tokenizer_classes", {})
    cls = cache.get(name)
    if cls is None:
        ns: dict[str, Any] = {
            "__call__": NativeFunction(f"{name}.__call__", _call),
            "pad_token_id": Property(NativeFunction("pad_token_id", _token_id("pad_token"))),
            "eos_token_id": Property(NativeFunction("eos_token_id", _token_id("eos_token"))),
            "bos_token_id": Property(NativeFunction("bos_token_id", _token_id("bos_token"))),
            "is_fast": True,
            "encode": NativeFunction(f"{name}.encode", _encode),
            "apply_chat_template": NativeFunction(f"{name}.apply_chat_template", _chat_template),
            "save_pretrained": NativeFunction(f"{name}.save_pretrained", lambda ev, a, k: None),
        }
        for what in ("decode", "batch_decode", "convert_tokens_to_ids", "add_special_tokens", "add_tokens", "__len__"):
            ns[what] = NativeFunction(f"{name}.{what}", _needs_vocabulary(what))
        cls = ClassValue(name, (ev.loader.builtins["object"],), ns, "transformers.tokenization_utils_base")
        cache[name] = cls
    return cls


def _token_id(token: str) -> Any:
    """A special token's id needs the vocabulary: None without the token, else unknown."""
    def get(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        tok = a[0].attrs.get(token) if isinstance(a[0], Instance) else None
        if tok is None or isinstance(tok, Unknown):
            return tok
        return Unknown(f"the id of {token} {tok!r} (vramlint reads no vocabulary)", ev.current_ref)
    return get


def make_tokenizer(ev: Evaluator, class_name: str, name: Any, kwargs: Mapping[str, Any]) -> Instance:
    tok = Instance(_tokenizer_class(ev, class_name))
    attrs, source = _attributes(ev, name, kwargs)
    tok.attrs.update(attrs)
    for key in SPECIAL_TOKENS + ("model_max_length", "padding_side"):
        if key in kwargs:  # from_pretrained(name, pad_token="<pad>", model_max_length=512...)
            tok.attrs[key] = kwargs[key]
    tok.attrs.update({"name_or_path": name, "truncation_side": "right", "vramlint_source": source})
    return tok


def _from_pretrained(class_name: str | None) -> Any:
    def rule(ev: Evaluator, func: Any) -> NativeFunction:
        def impl(ev2: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
            if len(a) < 2 and "pretrained_model_name_or_path" not in k:
                return Unknown("from_pretrained() without a name or path", ev2.current_ref)
            name = a[1] if len(a) > 1 else k["pretrained_model_name_or_path"]
            cls = a[0]
            shown = class_name or (cls.name if isinstance(cls, ClassValue) else "PreTrainedTokenizerFast")
            return make_tokenizer(ev2, shown, name, {key: v for key, v in k.items() if key in (*HUB_KWARGS, *SPECIAL_TOKENS,
                                                                                            "model_max_length",
                                                                                            "padding_side")})
        return NativeFunction(f"{getattr(func, 'qualname', 'from_pretrained')}", impl)
    return rule


# ---------------------------------------------------------------------- the call
def _limit(tok: Instance) -> int | None:
    mml = tok.attrs.get("model_max_length")
    return mml if isinstance(mml, int) and mml <= LARGE_INTEGER else None


def _shown(v: Any) -> str:
    return repr(v) if isinstance(v, (str, bool)) or v is None else str(v)


def token_length(ev: Evaluator, tok: Instance, padding: Any, truncation: Any, max_length: Any,
                 multiple: Any = None) -> TokenLength | Unknown:
    """The tokens per text of one call, as transformers' padding and truncation rules give them."""
    for v in (padding, truncation, max_length):
        if isinstance(v, Unknown):
            return v
    if max_length is not None and (not isinstance(max_length, int) or isinstance(max_length, bool) or max_length <= 0):
        return Unknown(f"tokenizer(..., max_length={max_length!r}): not a positive number of tokens", ev.current_ref)
    padding = getattr(padding, "value", padding)  # PaddingStrategy / TruncationStrategy members
    truncation = getattr(truncation, "value", truncation)
    at = f"at {where(ev)}" if where(ev) else ""
    if max_length is not None and padding is False and truncation is None:
        truncation = "longest_first"  # transformers: max_length alone turns truncation on
    pads_max = padding == "max_length"
    truncates = truncation not in (None, False, "do_not_truncate")
    mml = _limit(tok)
    given = max_length if isinstance(max_length, int) else None
    length = given if given is not None else (mml if pads_max or truncates else None)
    said = f"max_length={_shown(max_length)}" if given is not None else "model_max_length"
    if given is None and (pads_max or truncates) and mml is None:
        return Unknown(f"the tokens per text: the call pads or truncates to the tokenizer's model_max_length, "
                       f"which is not known ({tok.attrs.get('vramlint_source')}): give max_length=", ev.current_ref)
    if length is not None and isinstance(multiple, int) and multiple > 0 and pads_max:
        length = -(-length // multiple) * multiple
    if pads_max and length is not None:
        return TokenLength(int(length), True, f"{length} tokens: tokenizer(..., padding='max_length', {said}) {at}")
    if truncates and length is not None:
        per = "padded per batch" if padding not in (False, None, "do_not_pad") else "not padded"
        return TokenLength(int(length), False, f"at most {length} tokens: tokenizer(..., truncation={_shown(truncation)}, "
                                               f"{said}) {at}, {per}")
    counted = mml if mml is not None else UNTRUNCATED_TOKENS
    whence = "the tokenizer's model_max_length" if mml is not None else "vramlint's stand-in for an unknown length"
    return TokenLength(counted, False, f"untruncated text, its length read from no data: counted as {counted} tokens "
                                       f"({whence}), tokenizer(...) {at}")


def _count(text: Any) -> Any:
    """How many texts a call was given: one for a string (its output is not batched), else the list's length."""
    if isinstance(text, str):
        return None
    if isinstance(text, (list, tuple)):
        return len(text)
    return Unknown("the number of texts is not known", None)


def _call(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    tok = a[0]
    bound = {**dict(zip(_CALL_PARAMS, a[1:])), **k}
    text = bound.get("text", bound.get("text_target"))
    length = token_length(ev, tok, bound.get("padding", False), bound.get("truncation"), bound.get("max_length"),
                          bound.get("pad_to_multiple_of"))
    if isinstance(length, Unknown):
        return length
    if length.value > 0 and bound.get("padding") not in (None, False, "do_not_pad") and tok.attrs.get("pad_token") is None:
        raise ev.raise_error("ValueError", "Asking to pad but the tokenizer does not have a padding token. "
                                           "Please select a token to use as `pad_token`")
    note_tokens(ev, length)
    n = _count(text)
    out: dict[str, Any] = {}
    columns = ["input_ids"]
    if bound.get("return_attention_mask") is not False:
        columns.append("attention_mask")
    if bound.get("return_tensors") in ("pt", "np"):
        rows = 1 if n is None else n
        shape = (rows, sourced(length.value, length.text))
        for col in columns:
            out[col] = TensorValue(shape, "int64")
        ev.origins.note(shape, length.text)
        return out
    fill = {"input_ids": 0, "attention_mask": 1}
    for col in columns:
        one = [fill[col]] * length.value
        out[col] = one if n is None else (Unknown("tokens of an unknown number of texts", ev.current_ref)
                                           if isinstance(n, Unknown) else [list(one) for _ in range(n)])
    return out


def _needs_vocabulary(what: str) -> Any:
    return lambda ev, a, k: Unknown(f"tokenizer.{what}(...) needs the vocabulary (vramlint reads none)", ev.current_ref)


def _chat_template(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    """apply_chat_template(messages, tokenize=False): a text (its content is not made)."""
    if k.get("tokenize", True) is False:
        return sourced("<chat>", f"tokenizer.apply_chat_template(...) at {where(ev)}")
    return _needs_vocabulary("apply_chat_template")(ev, a, k)


def _encode(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    out = _call(ev, a, k)
    return out.get("input_ids") if isinstance(out, dict) else out


FUNCTION_RULES = {
    "transformers.models.auto.tokenization_auto.AutoTokenizer.from_pretrained": _from_pretrained("PreTrainedTokenizerFast"),
    "transformers.tokenization_utils_base.PreTrainedTokenizerBase.from_pretrained": _from_pretrained(None),
}
