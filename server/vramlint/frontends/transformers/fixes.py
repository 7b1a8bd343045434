"""Quick fixes for a transformers model that does not fit (Frontend.memory_fixes): what the field
does to fine-tune a model too large for the card.

- LoRA (peft): `model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))`
  after the model's statement: gradients and optimizer state for the adapters only.
- QLoRA: the checkpoint loaded with 4-bit weights (`quantization_config=BitsAndBytesConfig(...)`, nf4
  with double quantization and bf16 compute, the QLoRA paper's recipe), prepared with
  `prepare_model_for_kbit_training` and given LoRA adapters.

Each fix is text edits; the editor analyses the file with them to title the fix with its estimate.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from vramlint.frontends.interface import FixRequest, ProposedFix, SourceEdit
from vramlint.frontends.source_edits import import_edits, imported_names, indent_of

LORA = 'LoraConfig(r=16, lora_alpha=32, target_modules="all-linear")'
FOUR_BIT = ('BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, '
            'bnb_4bit_compute_dtype=torch.bfloat16)')
QUANTIZED = ("quantization_config", "load_in_4bit", "load_in_8bit")
# Classes with a from_pretrained that loads no model weights.
NOT_MODELS = ("Tokenizer", "Config", "Processor", "FeatureExtractor", "ImageProcessor", "PeftModel", "PeftConfig")


def memory_fixes(req: FixRequest) -> list[ProposedFix]:
    if "transformers" not in req.text:
        return []
    try:
        wrapper = MetadataWrapper(cst.parse_module(req.text))
    except (cst.ParserSyntaxError, RecursionError):
        return []
    positions = wrapper.resolve(PositionProvider)
    module = wrapper.module
    imported = imported_names(module)
    lines = req.text.splitlines()
    indent = indent_of(lines[req.line - 1]) if 0 < req.line <= len(lines) else ""
    after = (req.end_line, len(lines[req.end_line - 1]) if 0 < req.end_line <= len(lines) else 0)
    name = req.model
    out: list[ProposedFix] = []
    if req.trains_everything:
        lora = f"{name} = get_peft_model({name}, {LORA})"
        out.append(ProposedFix("Fine-tune with LoRA (peft: r=16, every linear layer)", (
            *import_edits(module, positions, imported, {"peft": ("LoraConfig", "get_peft_model")}),
            SourceEdit(*after, *after, f"\n{indent}{lora}"))))
    call = _unquantized_load(module, positions, req.line, req.end_line)
    if call is not None:
        needs = {"transformers": ("BitsAndBytesConfig",), "torch": ()}
        edits = [_add_argument(call, positions, f"quantization_config={FOUR_BIT}")]
        if req.trains_everything:
            needs["peft"] = ("LoraConfig", "get_peft_model", "prepare_model_for_kbit_training")
            edits.append(SourceEdit(*after, *after, f"\n{indent}{name} = prepare_model_for_kbit_training({name})"
                                                    f"\n{indent}{name} = get_peft_model({name}, {LORA})"))
        out.append(ProposedFix("QLoRA: 4-bit weights (bitsandbytes nf4) and LoRA adapters",
                               (*import_edits(module, positions, imported, needs), *edits)))
    return out


def _unquantized_load(module: cst.Module, positions: object, line: int, end_line: int) -> cst.Call | None:
    """The model's `X.from_pretrained(...)` without quantization: the one within its statement,
    else the file's first (`base = AutoModel...from_pretrained(...)` wrapped on a later line)."""
    found: list[cst.Call] = []

    class Finder(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            func = node.func
            if not (isinstance(func, cst.Attribute) and func.attr.value == "from_pretrained"):
                return
            receiver = func.value.attr.value if isinstance(func.value, cst.Attribute) else \
                func.value.value if isinstance(func.value, cst.Name) else ""
            if any(word in receiver for word in NOT_MODELS):
                return
            if any(a.keyword is not None and a.keyword.value in QUANTIZED for a in node.args):
                return
            found.append(node)

    module.visit(Finder())
    inside = [c for c in found if line <= positions[c].start.line <= end_line]  # type: ignore[index]
    return next(iter(inside or found), None)


def _add_argument(call: cst.Call, positions: object, text: str) -> SourceEdit:
    """`text` as the call's last argument, before its closing parenthesis."""
    end = positions[call].end  # type: ignore[index]
    at = (end.line, end.column - 1)
    if not call.args:
        return SourceEdit(*at, *at, text)
    trailing = not isinstance(call.args[-1].comma, cst.MaybeSentinel)
    return SourceEdit(*at, *at, (" " if trailing else ", ") + text)
