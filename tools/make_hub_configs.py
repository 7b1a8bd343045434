"""Regenerate vramlint's table of popular checkpoints' config.json values
(`server/vramlint/frontends/transformers/hub_configs.json`), the last place `from_pretrained`
looks for a config (docs/llm.md).

Two ways, each writing the same format (an entry: the checkpoint's name, its config.json as a
JSON object, where it was copied from, and when):

- From the Hugging Face Hub, where it is reachable (the way meant for releases):

      pip install huggingface_hub
      python tools/make_hub_configs.py hub [--top 100] [--token hf_...]

  The `--top` most-downloaded models of the pipeline tags in `HUB_TAGS` (text generation,
  fill-mask, seq2seq, vision), each config.json downloaded at the commit `model_info` reports;
  the entry records that commit and the download count. Gated checkpoints (Llama, Gemma) need a
  token that has accepted their licence; those that cannot be read are listed in the table's
  `missing`.

- From a verbatim copy that a public, permissively licensed repository carries, for a machine
  without the Hub (how the shipped table was made): MLC LLM's `model_preset.py` (Apache-2.0),
  whose presets are the config.json of the checkpoints MLC LLM ships, plus a few keys of MLC's
  own (`MLC_KEYS`, dropped here and listed in each entry's `source.dropped`):

      git clone https://github.com/mlc-ai/mlc-llm   # or any snapshot of it
      python tools/make_hub_configs.py mlc mlc-llm/python/mlc_llm/model/model_preset.py \\
          --commit $(git -C mlc-llm rev-parse HEAD) --date 2026-07-23

  Which checkpoint a preset is is stated in `MLC_PRESETS` with the evidence for it (the
  `_name_or_path` the preset holds, else the preset's name and the values that tell variants
  apart). Only the standard library is used in this mode: the file is read with `ast`, never run.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "server" / "vramlint" / "frontends" / "transformers" / "hub_configs.json"
MLC_REPO = "mlc-ai/mlc-llm"
MLC_PATH = "python/mlc_llm/model/model_preset.py"
HUB_TAGS = ("text-generation", "fill-mask", "text2text-generation", "image-classification",
            "feature-extraction", "sentence-similarity")
# Keys MLC LLM adds to a preset for its own runtime; not in the checkpoints' config.json.
MLC_KEYS = ("context_window_size", "prefill_chunk_size", "sliding_window_size", "attention_sink_size",
            "tensor_parallel_shards", "max_batch_size")

# preset -> (checkpoint, aliases the Hub redirects to it, why this preset is that checkpoint).
# Presets left out: remote-code architectures transformers does not have (phi-msft, qwen v1,
# baichuan, internlm, internlm2, chatglm, orion, minicpm, rwkv5, llava, phi3_v, ministral3), a fine-tune
# saved from a private path (tinyllama v0.4, redpajama), and presets that show MLC's edits beyond
# its own keys (gpt_j: a rope_scaling entry; olmo2: keys pruned).
MLC_PRESETS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "llama2_7b": ("meta-llama/Llama-2-7b-hf", (), "preset name; Llama 2 7B's shape (32 layers, 4096 wide)"),
    "llama2_13b": ("meta-llama/Llama-2-13b-hf", (), "_name_or_path"),
    "llama2_70b": ("meta-llama/Llama-2-70b-hf", (), "preset name; 80 layers, 8 KV heads"),
    "codellama_7b": ("codellama/CodeLlama-7b-hf", (), "_name_or_path"),
    "codellama_13b": ("codellama/CodeLlama-13b-hf", (), "preset name; vocab 32016 (Code Llama's)"),
    "codellama_34b": ("codellama/CodeLlama-34b-hf", (), "preset name; vocab 32016 (Code Llama's)"),
    "tinyllama_1b_chat_v1.0": ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", (), "preset name"),
    "mistral_7b": ("mistralai/Mistral-7B-v0.1", (),
                   "preset name; rope_theta 10000 and vocab 32000 are v0.1's (v0.2 has rope_theta 1e6); "
                   "MLC renamed `sliding_window` to its own `sliding_window_size` (dropped), so "
                   "transformers' default applies"),
    "mistral_7b_v03": ("mistralai/Mistral-7B-Instruct-v0.3", (),
                       "preset name; vocab 32768 is v0.3's (base and Instruct share the architecture)"),
    "gpt2": ("openai-community/gpt2", ("gpt2",), "preset name; 12 layers, 768 wide"),
    "gpt2_medium": ("openai-community/gpt2-medium", ("gpt2-medium",), "preset name; 24 layers, 1024 wide"),
    "gpt_bigcode": ("bigcode/gpt_bigcode-santacoder", (), "preset name; SantaCoder's shape (24 layers, 2048 wide, "
                                                          "vocab 49280)"),
    "Mixtral-8x7B-v0.1": ("mistralai/Mixtral-8x7B-v0.1", (), "preset name"),
    "phi-3_5": ("microsoft/Phi-3.5-mini-instruct", (), "_name_or_path"),
    "phi-4": ("microsoft/Phi-4-mini-instruct", (), "_name_or_path"),
    "qwen2": ("Qwen/Qwen1.5-1.8B-Chat", (), "_name_or_path"),
    "qwen2moe": ("Qwen/Qwen1.5-MoE-A2.7B-Chat", (), "preset name; 60 experts, eos 151645 (the Chat model's)"),
    "deepseek_v2_lite": ("deepseek-ai/DeepSeek-V2-Lite-Chat", (),
                         "preset name; 27 layers, 64 routed experts (V2-Lite and -Chat share the architecture)"),
    "gemma_2b": ("google/gemma-2b", (), "preset name"),
    "gemma2_2b": ("google/gemma-2-2b-it", (), "preset name; eos [1, 107] is the -it model's"),
    "gemma2_2b-jpn": ("google/gemma-2-2b-jpn-it", (), "preset name"),
    "gemma2_9b": ("google/gemma-2-9b", (), "preset name (base and -it share the architecture)"),
    "gemma2_27b": ("google/gemma-2-27b", (), "preset name (base and -it share the architecture)"),
    "gemma3_1b_it": ("google/gemma-3-1b-it", (), "preset name"),
    "llama3_1_8b": ("meta-llama/Llama-3.1-8B-Instruct", (),
                    "preset name; eos [128001, 128008, 128009] is the Instruct model's"),
    "llama3_1_70b": ("meta-llama/Llama-3.1-70B-Instruct", (),
                     "preset name; eos [128001, 128008, 128009] is the Instruct model's"),
    "llama3_2_1b": ("meta-llama/Llama-3.2-1B-Instruct", (),
                    "preset name; eos [128001, 128008, 128009] is the Instruct model's"),
    "llama3_2_3b": ("meta-llama/Llama-3.2-3B-Instruct", (),
                    "preset name; eos [128001, 128008, 128009] is the Instruct model's"),
    "snowflake-arctic-embed-m": ("Snowflake/snowflake-arctic-embed-m", (), "preset name"),
    "stablelm-2-zephyr-1_6b": ("stabilityai/stablelm-2-zephyr-1_6b", (), "preset name"),
    "stablelm": ("stabilityai/stablelm-zephyr-3b", (),
                 "preset name; StableLM-3B-4E1T's shape, which its Zephyr fine-tune keeps"),
    "qwen2_0_5b": ("Qwen/Qwen2-0.5B-Instruct", (), "preset name; eos 151645 is the Instruct model's"),
    "qwen2_1_5b": ("Qwen/Qwen2-1.5B-Instruct", (), "preset name; eos 151645 is the Instruct model's"),
    "qwen2.5_3b": ("Qwen/Qwen2.5-3B-Instruct", (), "preset name; eos 151645 is the Instruct model's"),
    "qwen2_7b": ("Qwen/Qwen2-7B-Instruct", (), "preset name; eos 151645 is the Instruct model's"),
    "qwen3_0.6b": ("Qwen/Qwen3-0.6B", (), "preset name"),
    "qwen3_1.7b": ("Qwen/Qwen3-1.7B", (), "preset name"),
    "starcoder2": ("bigcode/starcoder2-7b", (), "preset name; 32 layers, 4608 wide (StarCoder2-7B's shape)"),
    "smollm_135m": ("HuggingFaceTB/SmolLM-135M-Instruct", (),
                    "_name_or_path HuggingFaceTB/cosmo2-135M-webinst-sc2, the Instruct model's training name"),
    "smollm_360m": ("HuggingFaceTB/SmolLM-360M-Instruct", (),
                    "_name_or_path HuggingFaceTB/cosmo2-350M-webinst-sc2, the Instruct model's training name"),
    "smollm_1_7b": ("HuggingFaceTB/SmolLM-1.7B-Instruct", (),
                    "_name_or_path HuggingFaceTB/cosmo2-1.7B-webinst-sc2, the Instruct model's training name"),
    "smollm2_135m": ("HuggingFaceTB/SmolLM2-135M-Instruct", (), "preset name"),
    "smollm2_360m": ("HuggingFaceTB/SmolLM2-360M-Instruct", (), "preset name"),
    "aya-23": ("CohereForAI/aya-23-8B", (), "preset name; 32 layers, 4096 wide (the 8B model's shape)"),
}

# What the shipped table does not have, for its header (the families the issue names).
NOT_COVERED = (
    "encoders: google-bert/bert-base-uncased and other BERT, RoBERTa, DistilBERT, ALBERT, DeBERTa, XLM-R checkpoints; "
    "sentence-transformers/all-MiniLM-L6-v2 and other embedding models",
    "seq2seq: T5, Flan-T5, BART, mT5, Marian",
    "vision: ViT, CLIP, DINOv2, SigLIP, ConvNeXt",
    "decoders: Llama 3 / 3.3, Qwen2.5 0.5B/1.5B/7B+, Qwen3 4B+, Gemma 3 4B+, Phi-2, Phi-3-mini, Falcon, OPT, "
    "BLOOM, GPT-Neo/NeoX/Pythia, distilgpt2, DeepSeek-R1 distills",
)


def _mlc_presets(path: Path) -> dict[str, dict[str, Any]]:
    """`MODEL_PRESETS = {...}` of model_preset.py, read as a literal (never executed)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == "MODEL_PRESETS" and node.value is not None:
            value = ast.literal_eval(node.value)
            assert isinstance(value, dict)
            return value
    raise SystemExit(f"{path}: no MODEL_PRESETS literal")


def from_mlc(path: Path, commit: str, date: str) -> dict[str, Any]:
    presets = _mlc_presets(path)
    entries = []
    for key, (name, aliases, evidence) in MLC_PRESETS.items():
        preset = presets[key]
        config = {k: v for k, v in preset.items() if k not in MLC_KEYS}
        entries.append({
            "name": name,
            "aliases": list(aliases),
            "config": config,
            "source": {"repository": MLC_REPO, "path": MLC_PATH, "commit": commit, "key": key,
                       "dropped": [k for k in MLC_KEYS if k in preset], "identified_by": evidence},
            "date": date,
        })
    return _table(f"github.com/{MLC_REPO} {MLC_PATH} at {commit} ({date}), Apache-2.0; the Hub was not reachable",
                  f"{len(entries)} checkpoints, decoders and one BERT embedding model. The Hub's own top-100 "
                  "ranking could not be read where this table was made, so how many of the 100 most-downloaded "
                  "it holds is not measured: `tools/make_hub_configs.py hub` makes that table.",
                  list(NOT_COVERED), entries)


def from_hub(top: int, token: str | None) -> dict[str, Any]:
    from huggingface_hub import HfApi, hf_hub_download  # only this mode needs it

    api = HfApi(token=token)
    seen: dict[str, Any] = {}
    for tag in HUB_TAGS:
        for m in api.list_models(pipeline_tag=tag, sort="downloads", limit=top):
            seen.setdefault(m.id, (m.downloads or 0, tag))
    ranked = sorted(seen.items(), key=lambda kv: -kv[1][0])[:top]
    entries, missing = [], []
    today = dt.date.today().isoformat()
    for repo_id, (downloads, tag) in ranked:
        try:
            sha = api.model_info(repo_id).sha
            path = hf_hub_download(repo_id, "config.json", revision=sha, token=token)
            config = json.loads(Path(path).read_text(encoding="utf-8"))
        except Exception as err:  # gated, no config.json (GGUF, adapters), not JSON: say which and why
            missing.append(f"{repo_id}: {type(err).__name__}")
            continue
        entries.append({"name": repo_id, "aliases": [], "config": config,
                        "source": {"repository": f"huggingface.co/{repo_id}", "path": "config.json", "commit": sha,
                                   "downloads": downloads, "pipeline_tag": tag},
                        "date": today})
    return _table(f"the Hugging Face Hub, the {top} most-downloaded models of {', '.join(HUB_TAGS)}",
                  f"{len(entries)} of the {len(ranked)} most-downloaded checkpoints", missing, entries)


def _table(made_from: str, coverage: str, missing: list[str], entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "about": ("config.json values of popular Hugging Face checkpoints, the last place vramlint's "
                  "from_pretrained looks for a config (docs/llm.md). Facts copied, never typed: each entry says "
                  "where from. Regenerate with tools/make_hub_configs.py."),
        "made": dt.date.today().isoformat(),
        "made_from": made_from,
        "coverage": coverage,
        "missing": missing,
        "entries": sorted(entries, key=lambda e: e["name"].lower()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    hub = sub.add_parser("hub", help="from the Hugging Face Hub")
    hub.add_argument("--top", type=int, default=100)
    hub.add_argument("--token")
    mlc = sub.add_parser("mlc", help="from MLC LLM's model_preset.py")
    mlc.add_argument("preset_file", type=Path)
    mlc.add_argument("--commit", required=True, help="the mlc-llm commit the file is from")
    mlc.add_argument("--date", required=True, help="that commit's date, YYYY-MM-DD")
    parser.add_argument("--out", type=Path, default=TABLE)
    args = parser.parse_args(argv)
    table = from_hub(args.top, args.token) if args.mode == "hub" else from_mlc(args.preset_file, args.commit, args.date)
    args.out.write_text(json.dumps(table, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(table['entries'])} entries", file=sys.stderr)


if __name__ == "__main__":
    main()
