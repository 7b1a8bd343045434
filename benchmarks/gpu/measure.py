"""Measure real training/inference memory of a fixed set of models.

(vramlint: a copy of the calibration set's measure.py, benchmarks/data/calibration/README.md, so that the
hold-out cases are measured the same way; only the per-case subprocess re-enters sys.argv[0].)

Run on a CUDA machine:  python3 gpu_measure.py --all --out results.jsonl
Each case runs in its own process so allocator state never leaks between cases.
On a CPU-only machine `--dry` runs tiny versions of the cases to check the script.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "models")  # put your own model files here for "file:NAME.py:OBJECT" cases

# id, source, builder args, input spec, batch, optimizer, precision, mode, extra
CASES = [
    # --- public calibration: torchvision -------------------------------------------
    ("tv_resnet18_adam", "tv:resnet18", {}, ("img", 3, 224, 224, 1000), 64, "adam", "fp32", "train", {}),
    ("tv_resnet18_sgdm_bf16amp", "tv:resnet18", {}, ("img", 3, 224, 224, 1000), 64, "sgd-momentum", "amp-bf16", "train", {}),
    ("tv_resnet18_infer", "tv:resnet18", {}, ("img", 3, 224, 224, 1000), 64, "none", "fp32", "infer", {}),
    ("tv_resnet50_sgdm_b32", "tv:resnet50", {}, ("img", 3, 224, 224, 1000), 32, "sgd-momentum", "fp32", "train", {}),
    ("tv_resnet50_sgdm_b64", "tv:resnet50", {}, ("img", 3, 224, 224, 1000), 64, "sgd-momentum", "fp32", "train", {}),
    ("tv_resnet50_adamw_fp16amp", "tv:resnet50", {}, ("img", 3, 224, 224, 1000), 64, "adamw", "amp-fp16", "train", {}),
    ("tv_vgg16_sgdm", "tv:vgg16", {}, ("img", 3, 224, 224, 1000), 32, "sgd-momentum", "fp32", "train", {}),
    ("tv_alexnet_sgdm", "tv:alexnet", {}, ("img", 3, 224, 224, 1000), 128, "sgd-momentum", "fp32", "train", {}),
    ("tv_mobilenet_v2_adam", "tv:mobilenet_v2", {}, ("img", 3, 224, 224, 1000), 64, "adam", "fp32", "train", {}),
    ("tv_densenet121_sgdm", "tv:densenet121", {}, ("img", 3, 224, 224, 1000), 32, "sgd-momentum", "fp32", "train", {}),
    ("tv_efficientnet_b0_adamw", "tv:efficientnet_b0", {}, ("img", 3, 224, 224, 1000), 64, "adamw", "fp32", "train", {}),
    ("tv_vit_b_16_adamw", "tv:vit_b_16", {}, ("img", 3, 224, 224, 1000), 32, "adamw", "fp32", "train", {}),
    ("tv_vit_b_16_adamw_bf16amp", "tv:vit_b_16", {}, ("img", 3, 224, 224, 1000), 32, "adamw", "amp-bf16", "train", {}),
    ("tv_convnext_tiny_adamw", "tv:convnext_tiny", {}, ("img", 3, 224, 224, 1000), 32, "adamw", "fp32", "train", {}),
    ("tv_squeezenet1_0_sgdm", "tv:squeezenet1_0", {}, ("img", 3, 224, 224, 1000), 64, "sgd-momentum", "fp32", "train", {}),
    # --- public calibration: transformers built from configs --------------------------
    ("hf_gpt2_adamw_s512", "hf:gpt2", {}, ("hflm", 50257, 512), 8, "adamw", "fp32", "train", {}),
    ("hf_gpt2_adamw_s1024_bf16amp", "hf:gpt2", {}, ("hflm", 50257, 1024), 8, "adamw", "amp-bf16", "train", {}),
    ("hf_gpt2_adamw_s1024_ckpt", "hf:gpt2", {}, ("hflm", 50257, 1024), 8, "adamw", "fp32", "train", {"checkpointing": True}),
    ("hf_bert_base_mlm_adamw", "hf:bert", {}, ("hflm", 30522, 128), 32, "adamw", "fp32", "train", {}),
    ("hf_llama_small_bf16", "hf:llama_small", {}, ("hflm", 32000, 1024), 4, "adamw", "bf16", "train", {}),
    ("hf_gpt2_infer_s1024", "hf:gpt2", {}, ("hflm", 50257, 1024), 8, "none", "fp32", "infer", {}),
    # --- second batch: scaling series and more architectures ---------------------------
    ("tv_resnet50_sgdm_b8", "tv:resnet50", {}, ("img", 3, 224, 224, 1000), 8, "sgd-momentum", "fp32", "train", {}),
    ("tv_resnet50_sgdm_b16", "tv:resnet50", {}, ("img", 3, 224, 224, 1000), 16, "sgd-momentum", "fp32", "train", {}),
    ("tv_resnet50_sgdm_b128", "tv:resnet50", {}, ("img", 3, 224, 224, 1000), 128, "sgd-momentum", "fp32", "train", {}),
    ("tv_resnet50_infer_b64", "tv:resnet50", {}, ("img", 3, 224, 224, 1000), 64, "none", "fp32", "infer", {}),
    ("tv_resnet101_sgdm", "tv:resnet101", {}, ("img", 3, 224, 224, 1000), 32, "sgd-momentum", "fp32", "train", {}),
    ("tv_vgg11_bn_sgdm", "tv:vgg11_bn", {}, ("img", 3, 224, 224, 1000), 32, "sgd-momentum", "fp32", "train", {}),
    ("tv_vit_b_16_infer", "tv:vit_b_16", {}, ("img", 3, 224, 224, 1000), 32, "none", "fp32", "infer", {}),
    ("hf_gpt2_adamw_s256_b16", "hf:gpt2", {}, ("hflm", 50257, 256), 16, "adamw", "fp32", "train", {}),
    ("hf_bert_base_mlm_sgd_b8", "hf:bert", {}, ("hflm", 30522, 512), 8, "sgd", "fp32", "train", {}),
]


def load_file_model(relfile, name):
    path = os.path.join(MODELS, relfile)
    spec = importlib.util.spec_from_file_location(relfile[:-3], path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[relfile[:-3]] = mod
    spec.loader.exec_module(mod)
    return getattr(mod, name)


def build(source, kwargs):
    kind, _, rest = source.partition(":")
    if kind == "file":
        relfile, name = rest.split(":")
        obj = load_file_model(relfile, name)
        return obj if kwargs is None else obj(**kwargs)
    if kind == "tv":
        import torchvision
        return getattr(torchvision.models, rest)(weights=None, **kwargs)
    if kind == "hf":
        import transformers as T
        if rest == "gpt2":
            return T.GPT2LMHeadModel(T.GPT2Config())
        if rest == "bert":
            return T.BertForMaskedLM(T.BertConfig())
        if rest == "llama_small":
            cfg = T.LlamaConfig(hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
                                num_attention_heads=16, num_key_value_heads=16, vocab_size=32000,
                                max_position_embeddings=2048)
            return T.LlamaForCausalLM(cfg)
    raise ValueError(source)


def make_batch(torch, spec, batch, device, dry):
    kind = spec[0]
    if kind == "vec":
        _, d, n = spec
        return (torch.randn(batch, d, device=device),), torch.randint(0, n, (batch,), device=device)
    if kind == "img":
        _, c, h, w, n = spec
        return (torch.randn(batch, c, h, w, device=device),), torch.randint(0, n, (batch,), device=device)
    if kind == "seg":
        _, c, h, w, n = spec
        return (torch.randn(batch, c, h, w, device=device),), torch.randint(0, n, (batch, h, w), device=device)
    if kind in ("tok", "gpt", "hflm"):
        _, v, t = spec
        return (torch.randint(0, v, (batch, t), device=device),), torch.randint(0, v, (batch, t), device=device)
    if kind == "ae":
        x = torch.rand(batch, spec[1], device=device)
        return (x,), x
    if kind == "s2s":
        _, v, t = spec
        src = torch.randint(0, v, (batch, t), device=device)
        tgt = torch.randint(0, v, (batch, t), device=device)
        return (src, tgt), torch.randint(0, v, (batch, t), device=device)
    raise ValueError(kind)


def loss_of(torch, spec, model, inputs, target):
    F = torch.nn.functional
    kind = spec[0]
    if kind == "gpt":
        _, loss = model(inputs[0], target)
        return loss
    if kind == "hflm":
        return model(input_ids=inputs[0], labels=target).loss
    out = model(*inputs)
    if kind == "ae":
        return F.mse_loss(out, target)
    if kind in ("tok", "s2s"):
        return F.cross_entropy(out.reshape(-1, out.size(-1)), target.reshape(-1))
    return F.cross_entropy(out, target)


def make_opt(torch, name, params):
    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-3)
    if name == "sgd-momentum":
        return torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-4)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=1e-4)
    raise ValueError(name)


def rss_bytes():
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return {k: int(fields[k].split()[0]) * 1024 for k in ("VmRSS", "VmHWM")}


def run_case(case, dry):
    import torch
    cid, source, kwargs, spec, batch, opt_name, precision, mode, extra = case
    cuda = torch.cuda.is_available() and not dry
    device = "cuda" if cuda else "cpu"
    if dry:
        batch = min(batch, 2)
        if spec[0] in ("img", "seg") and spec[2] > 64:
            spec = spec[:2] + (64, 64) + spec[4:]
        if spec[0] in ("gpt", "hflm", "tok", "s2s"):
            spec = spec[:2] + (16,)
    torch.manual_seed(0)
    rec = {"id": cid, "source": source, "kwargs": kwargs, "input": list(spec), "batch": batch,
           "optimizer": opt_name, "precision": precision, "mode": mode, "extra": extra,
           "torch": torch.__version__}
    if cuda:
        rec["device"] = torch.cuda.get_device_name()
        torch.cuda.init()
        free0, total = torch.cuda.mem_get_info()
        rec["device_total"] = total
    model = build(source, kwargs)
    if extra.get("checkpointing"):
        model.gradient_checkpointing_enable()
    params = {id(p): p for p in model.parameters()}
    rec["params"] = sum(p.numel() for p in params.values())
    rec["trainable_params"] = sum(p.numel() for p in params.values() if p.requires_grad)
    rec["buffer_bytes"] = sum(b.numel() * b.element_size() for b in model.buffers())
    if precision == "bf16":
        model = model.to(torch.bfloat16)
    model = model.to(device)
    inputs, target = make_batch(torch, spec, batch, device, dry)
    if precision == "bf16":
        inputs = tuple(i.to(torch.bfloat16) if i.is_floating_point() else i for i in inputs)
        if target.is_floating_point():
            target = target.to(torch.bfloat16)
    amp = {"amp-bf16": torch.bfloat16, "amp-fp16": torch.float16}.get(precision)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    alloc = torch.cuda.memory_allocated if cuda else (lambda: 0)
    peak = torch.cuda.max_memory_allocated if cuda else (lambda: 0)
    reset = torch.cuda.reset_peak_memory_stats if cuda else (lambda: None)
    sync()
    rec["alloc_model_and_inputs"] = alloc()
    steps = []
    t0 = time.time()
    if mode == "infer":
        model.eval()
        for _ in range(3):
            reset()
            before = alloc()
            with torch.no_grad(), torch.autocast(device, dtype=amp, enabled=amp is not None):
                out = model(*inputs) if spec[0] not in ("gpt",) else model(inputs[0])
                del out
            sync()
            steps.append({"start": before, "peak": peak(), "end": alloc()})
    else:
        model.train()
        opt = make_opt(torch, opt_name, model.parameters())
        scaler = torch.amp.GradScaler(device) if precision == "amp-fp16" else None
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            sync()
            reset()
            s = {"start": alloc()}
            with torch.autocast(device, dtype=amp, enabled=amp is not None):
                loss = loss_of(torch, spec, model, inputs, target)
            sync()
            s["after_forward"] = alloc()
            s["peak_forward"] = peak()
            if scaler:
                scaler.scale(loss).backward()
            else:
                loss.backward()
            sync()
            s["after_backward"] = alloc()
            s["peak_backward"] = peak()
            if scaler:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            del loss
            sync()
            s["after_step"] = alloc()
            s["peak"] = peak()
            steps.append(s)
        rec["optimizer_state_bytes"] = sum(
            t.numel() * t.element_size()
            for st in opt.state.values() for t in st.values() if torch.is_tensor(t))
    rec["seconds"] = round(time.time() - t0, 3)
    rec["steps"] = steps
    rec["peak_first_step"] = steps[0]["peak"]
    rec["peak_steady"] = max(s["peak"] for s in steps[1:])
    if cuda:
        rec["max_reserved"] = torch.cuda.max_memory_reserved()
        free1, total = torch.cuda.mem_get_info()
        rec["device_used_end"] = total - free1
        rec["reserved_end"] = torch.cuda.memory_reserved()
        rec["context_overhead_est"] = (total - free1) - torch.cuda.memory_reserved()
    rec.update(rss_bytes())
    return rec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case")
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--dry", action="store_true")
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--only", default="")
    ap.add_argument("--out", default="results.jsonl")
    args = ap.parse_args()
    if args.case:
        case = next(c for c in CASES if c[0] == args.case)
        try:
            rec = run_case(case, args.dry)
        except Exception as e:  # keep going: one broken case must not hide the others
            rec = {"id": case[0], "error": f"{type(e).__name__}: {e}"}
        print("RESULT " + json.dumps(rec), flush=True)
        return
    ids = [c[0] for c in CASES if not args.only or any(s in c[0] for s in args.only.split(","))]

    def one(cid):
        # vramlint: the entry script (run_holdout.py re-enters with its own CASES), not this file.
        cmd = [sys.executable, os.path.abspath(sys.argv[0]), "--case", cid] + (["--dry"] if args.dry else [])
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
            out = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
            if out:
                return json.loads(out[-1][7:])
            return {"id": cid, "error": "no result", "stderr": p.stderr[-2000:]}
        except subprocess.TimeoutExpired:
            return {"id": cid, "error": "timeout"}

    with open(args.out, "w") as f, ThreadPoolExecutor(args.jobs) as ex:
        for rec in ex.map(one, ids):
            f.write(json.dumps(rec) + "\n")
            f.flush()
            brief = rec.get("error") or f"params={rec['params']} peak_steady={rec['peak_steady']/2**20:.1f}MiB"
            print(rec["id"], brief, flush=True)


if __name__ == "__main__":
    main()
