"""The README's gap measurement on CPU: a real base / tuned pair with one tokenizer, built here.

No base / instruct pair that shares a tokenizer ships offline, so `build` makes one: a short,
seeded supervised fine-tune of the embedded gemma-3-270m base on GSM8K worked solutions (read at
run time from ../shared/data/gsm8k/test.jsonl, never committed) in Gemma's chat format, training
the last two transformer blocks only (CPU is shared). The tuned model is saved with its chat
template and the sha256 of its weights is printed and recorded. `measure` then runs
`condpred gap` on the pair (held-out GSM8K questions the fine-tune never saw, and a few general
prompts written here), stopped by SIGINT when its time is up and resumable:

    nice -n 10 python bench/gap_embedded.py build
    nice -n 10 timeout -s INT 2400 python bench/gap_embedded.py measure DB \
        bench/results/gap_embedded.json
    condpred resume RUN_ID --db DB   # goes on where a stopped measure left off
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from condpred import Store
from condpred.experiments.gap import GapRow, SoftEvalRow, run_gap, summarise
from condpred.experiments.gap.run import trained_info
from condpred.experiments.runner import read_rows
from condpred.model.gguf import cache_root, converted_dir
from condpred.model.registry import embedded_model, load_model

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "test.jsonl"
CONDITIONALS = Path(__file__).resolve().parent / "data" / "gap_conditionals.yaml"
WORK = cache_root() / "gap"
TUNED = WORK / "gemma-3-270m-gsm8k-sft"
SEED = 0
SFT = {"examples": 96, "max_tokens": 144, "accumulate": 4, "lr": 3e-4, "layers": 2}
HELD_OUT = range(1000, 1010)  # GSM8K questions the fine-tune never saw (it trains on 0..95)
GENERAL = [
    "Name three rivers in Europe.",
    "Write a short poem about the sea.",
    "What is the capital of Australia?",
    "Explain what a prime number is.",
    "Why is the sky blue?",
    "Suggest a name for a pet turtle.",
]
# Gemma's chat format (the embedded GGUF carries no template); <start_of_turn> and <end_of_turn>
# are single tokens of its vocabulary (ids 105 and 106).
TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>"
    "{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ m['content'] | trim }}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def base_dir() -> Path:
    return converted_dir(embedded_model("default").gguf(), name="gemma-3-270m")


def gsm8k() -> list[dict]:
    return [json.loads(line) for line in GSM8K.read_text().splitlines() if line.strip()]


def build() -> None:
    """The seeded fine-tune; prints and records the sha256 of the saved weights."""
    torch.manual_seed(SEED)
    started = time.time()
    tokenizer = AutoTokenizer.from_pretrained(base_dir())
    tokenizer.chat_template = TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(base_dir(), dtype=torch.float32)
    model.requires_grad_(False)
    trained = [*model.model.layers[-SFT["layers"] :], model.model.norm]
    for module in trained:
        module.requires_grad_(True)
    params = [p for m in trained for p in m.parameters()]
    optimiser = torch.optim.AdamW(params, lr=SFT["lr"])
    model.train()
    losses = []
    for i, record in enumerate(gsm8k()[: SFT["examples"]]):
        answer = re.sub(r"<<[^<>]*>>", "", record["answer"]).strip()
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": record["question"]}],
            tokenize=False,
            add_generation_prompt=True,
        )
        prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
        answer_ids = tokenizer(answer + "<end_of_turn>", add_special_tokens=False).input_ids
        ids = (prompt_ids + answer_ids)[: SFT["max_tokens"]]
        scored = len(ids) - len(prompt_ids)
        if scored < 2:
            continue
        inputs = torch.tensor([ids])
        logits = model(input_ids=inputs, logits_to_keep=scored + 1).logits[0, :-1]
        loss = torch.nn.functional.cross_entropy(logits.float(), inputs[0, -scored:])
        (loss / SFT["accumulate"]).backward()
        losses.append(float(loss.detach()))
        if (i + 1) % SFT["accumulate"] == 0:
            optimiser.step()
            optimiser.zero_grad()
        if (i + 1) % 20 == 0:
            mean = sum(losses[-20:]) / 20
            print(f"{i + 1} examples, loss {mean:.3f}, {time.time() - started:.0f} s", flush=True)
    model.eval()
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, 106]  # <end_of_turn> ends
    model.save_pretrained(TUNED)
    tokenizer.save_pretrained(TUNED)
    digest = hashlib.sha256((TUNED / "model.safetensors").read_bytes()).hexdigest()
    record = {
        "seed": SEED,
        **SFT,
        "data": "GSM8K test questions 0..95 (worked solutions, calculator annotations removed)",
        "weights_sha256": digest,
        "losses_first_last_20": [sum(losses[:20]) / 20, sum(losses[-20:]) / 20],
        "train_s": time.time() - started,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    (TUNED / "build.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


def prompts_file() -> Path:
    rows = [
        {"prompt": gsm8k()[i]["question"], "category": "gsm8k", "id": f"gsm8k-{i}"}
        for i in HELD_OUT
    ]
    rows += [
        {"prompt": p, "category": "general", "id": f"general-{i}"} for i, p in enumerate(GENERAL)
    ]
    path = WORK / "prompts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def measure(db: Path, out: Path) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # so `timeout -s INT` stops us
    started = time.time()
    load = {"default": lambda: load_model("default", device="cpu")}

    def loader(spec: str):
        return load[spec]() if spec in load else load_model(spec, device="cpu")

    with Store(db) as store:
        try:
            result = run_gap(
                "default",
                str(TUNED),
                str(prompts_file()),
                conditionals=str(CONDITIONALS),
                soft_prompt=8,
                samples=2,
                max_tokens=40,
                soft_steps=24,
                seed=SEED,
                store=store,
                load=loader,
            )
            run_id, summary = result.run_id, result.summary
        except KeyboardInterrupt:
            run = store.list_runs(limit=1)[0]
            run_id = run.id
            summary = summarise(
                read_rows(store, run.id, GapRow),
                read_rows(store, run.id, SoftEvalRow),
                run.params,
                run.seed or 0,
                trained_info(store, run.id),
            )
        status = store.get_run(run_id).status
    build_record = json.loads((TUNED / "build.json").read_text())
    wall = time.time() - started
    record = {"run_id": run_id, "status": status, "wall_s": wall, "pair": build_record, **summary}
    out.write_text(json.dumps(record, indent=1))
    print(f"run {run_id}: {status} after {wall:.0f} s; wrote {out}")


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build()
    else:
        measure(Path(sys.argv[2]), Path(sys.argv[3]))
