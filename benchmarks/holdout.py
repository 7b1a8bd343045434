"""Hold-out cases: models and settings the memory model was never tuned on.

The calibration set (benchmarks/data/calibration) was used while building the memory model; these
cases were measured afterwards, on an H200 with the same protocol (benchmarks/gpu/measure.py,
a copy of the calibration script, run by benchmarks/gpu/run_holdout.py), and their results are
stored in benchmarks/results/holdout-h200.jsonl. `python benchmarks/accuracy.py --holdout` prints
the estimate against them.
"""

from __future__ import annotations

from pathlib import Path

# (id, source, builder kwargs, input spec, batch, optimizer, precision, mode, extra): measure.py's format.
CASES = [
    ("ho_question_mlp_adam", "file:question_mlp.py:model", None, ("vec", 1000, 10), 256, "adam", "fp32", "train", {}),
    ("ho_question_mlp_sgd", "file:question_mlp.py:model", None, ("vec", 1000, 10), 256, "sgd", "fp32", "train", {}),
    ("ho_resnet34_sgdm", "tv:resnet34", {}, ("img", 3, 224, 224, 1000), 64, "sgd-momentum", "fp32", "train", {}),
    ("ho_resnet18_adam_b256", "tv:resnet18", {}, ("img", 3, 224, 224, 1000), 256, "adam", "fp32", "train", {}),
    ("ho_mobilenet_v3_large_adamw", "tv:mobilenet_v3_large", {}, ("img", 3, 224, 224, 1000), 64, "adamw", "fp32",
     "train", {}),
    ("ho_shufflenet_v2_sgdm", "tv:shufflenet_v2_x1_0", {}, ("img", 3, 224, 224, 1000), 128, "sgd-momentum", "fp32",
     "train", {}),
    ("ho_mnasnet1_0_adam", "tv:mnasnet1_0", {}, ("img", 3, 224, 224, 1000), 64, "adam", "fp32", "train", {}),
    ("ho_regnet_y_400mf_bf16amp", "tv:regnet_y_400mf", {}, ("img", 3, 224, 224, 1000), 64, "adamw", "amp-bf16",
     "train", {}),
    ("ho_swin_t_adamw", "tv:swin_t", {}, ("img", 3, 224, 224, 1000), 32, "adamw", "fp32", "train", {}),
    ("ho_wide_resnet50_2_bf16amp", "tv:wide_resnet50_2", {}, ("img", 3, 224, 224, 1000), 32, "sgd-momentum",
     "amp-bf16", "train", {}),
    ("ho_densenet169_sgd", "tv:densenet169", {}, ("img", 3, 224, 224, 1000), 32, "sgd", "fp32", "train", {}),
    ("ho_convnext_tiny_bf16amp", "tv:convnext_tiny", {}, ("img", 3, 224, 224, 1000), 64, "adamw", "amp-bf16",
     "train", {}),
    ("ho_vgg13_infer", "tv:vgg13", {}, ("img", 3, 224, 224, 1000), 64, "none", "fp32", "infer", {}),
    ("ho_efficientnet_b2_infer", "tv:efficientnet_b2", {}, ("img", 3, 288, 288, 1000), 32, "none", "fp32", "infer",
     {}),
    ("ho_nanogpt_bf16amp", "file:nanogpt.py:model", None, ("gpt", 50304, 1024), 4, "adamw", "amp-bf16", "train", {}),
    ("ho_nanogpt_fp32_s512", "file:nanogpt.py:model", None, ("gpt", 50304, 512), 8, "adamw", "fp32", "train", {}),
    ("ho_t5_small_adamw", "file:t5.py:model", None, ("hflm", 32128, 512), 8, "adamw", "fp32", "train", {}),
    ("ho_llama_small_bf16amp", "hf:llama_small", {}, ("hflm", 32000, 1024), 4, "adamw", "amp-bf16", "train", {}),
    ("ho_bert_bf16_s512", "hf:bert", {}, ("hflm", 30522, 512), 16, "adamw", "bf16", "train", {}),
    ("ho_gpt2_ckpt_sgdm_s512", "hf:gpt2", {}, ("hflm", 50257, 512), 16, "sgd-momentum", "fp32", "train",
     {"checkpointing": True}),
]

# What a user would write for each model: the source vramlint analyses (the batch comes from the call).
SOURCES = {
    "file:question_mlp.py:model": (Path(__file__).parent / "gpu" / "models" / "question_mlp.py").read_text(),
    "file:nanogpt.py:model": "from gpt import GPT, GPTConfig\nmodel = GPT(GPTConfig())\n",
    "file:t5.py:model": "from transformers import T5Config, T5ForConditionalGeneration\n"
                        "model = T5ForConditionalGeneration(T5Config())\n",
}
