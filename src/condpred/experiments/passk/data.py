"""Problems for pass@k: GSM8K, MATH-500 or any JSONL with a question and an answer, and the
prompts that frame them (recorded with every run).

An answer with `#### X` (GSM8K's worked solutions) has a numeric gold answer X; any other answer
is symbolic, its gold the last `\\boxed{...}` in it, or the answer itself (MATH-500's `answer`
field). The reference solution (GSM8K's answer, MATH's `solution`) is what the verifier is
validated on and what few-shot exemplars show.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from condpred.errors import InputError

CALCULATOR = re.compile(r"<<[^<>]*>>")  # GSM8K's calculator annotations (its README: delete them)
STYLES = ("base", "chat")
PROMPT_STYLES = ("native", "base", "chat", "both")


@dataclass(frozen=True)
class Problem:
    id: str
    question: str
    gold: str
    kind: str  # "numeric" or "symbolic"
    reference: str | None  # a worked solution ending in the gold answer, when the data has one


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} in `text`, braces balanced."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        return None
    depth = 0
    for i in range(brace, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[brace + 1 : i]
    return None


def problem_from(record: dict[str, Any], line: int, source: str) -> Problem:
    question = record.get("question", record.get("problem"))
    answer = record.get("answer")
    if not isinstance(question, str) or not isinstance(answer, str) or not question.strip():
        raise InputError(
            "a problem needs a 'question' (or 'problem') and an 'answer', both text",
            source=f"{source}:{line}",
            fix='One JSON object a line, e.g. {"question": "2+2?", "answer": "#### 4"}',
        )
    pid = str(record.get("id", record.get("unique_id", f"line {line}")))
    if "####" in answer:
        gold = answer.rsplit("####", 1)[1].strip().replace(",", "")
        reference = CALCULATOR.sub("", answer)
        return Problem(pid, question.strip(), gold, "numeric", reference)
    gold = last_boxed(answer) or answer.strip()
    solution = record.get("solution")
    reference = solution if isinstance(solution, str) else (answer if "\\boxed" in answer else None)
    return Problem(pid, question.strip(), gold, "symbolic", reference)


def load_problems(path: str | Path, limit: int | None = None) -> tuple[list[Problem], str]:
    """Every problem of a JSONL file (the first `limit`), and the file's sha256 (recorded with the
    run, so a resume on changed data is refused)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"no such file: {path}",
            source="--data",
            fix="Pass a JSONL file, e.g. ../shared/data/gsm8k/test.jsonl",
        )
    raw = path.read_bytes()
    problems = []
    for line, text in enumerate(raw.decode("utf-8").splitlines(), 1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(f"not JSON: {error.msg}", source=f"{path}:{line}") from None
        problems.append(problem_from(record, line, str(path)))
        if limit is not None and len(problems) >= limit:
            break
    if not problems:
        raise InputError("the file holds no problems", source=str(path))
    return problems, hashlib.sha256(raw).hexdigest()


# --- prompts ------------------------------------------------------------------------------------

BASE_HEADER = {
    "numeric": "Worked solutions to grade-school math word problems. Each solution ends with the "
    "final answer on a line of its own, after ####.\n\n",
    "symbolic": "Worked solutions to competition mathematics problems. Each solution ends with the "
    "final answer in \\boxed{}.\n\n",
}
CHAT_INSTRUCTION = {
    "numeric": "Solve the problem step by step. Write the final answer on the last line as "
    "'#### <number>'.",
    "symbolic": "Solve the problem step by step. Put the final answer in \\boxed{}.",
}
BASE_STOP = ("\nProblem ",)


def base_prompt(problem: Problem, shots: list[Problem]) -> str:
    """The camera for a base model: a page of worked solutions, `shots` of them written out
    before the problem (few-shot), then the problem and the start of its solution."""
    parts = [BASE_HEADER[problem.kind]]
    for number, shot in enumerate([*shots, problem], 1):
        parts.append(f"Problem {number}.\n{shot.question}\n\nSolution.\n")
        if shot is not problem:
            parts.append(f"{(shot.reference or '').strip()}\n\n")
    return "".join(parts)


def chat_messages(problem: Problem, shots: list[Problem]) -> list[dict[str, str]]:
    """The conversation for a chat model: the problem with the instruction as the user's turn,
    earlier problems with their reference solutions as earlier turns (few-shot)."""
    messages = []
    for shot in [*shots, problem]:
        messages.append(
            {"role": "user", "content": f"{shot.question}\n\n{CHAT_INSTRUCTION[problem.kind]}"}
        )
        if shot is not problem:
            messages.append({"role": "assistant", "content": (shot.reference or "").strip()})
    return messages


def chat_prompt(model: Any, problem: Problem, shots: list[Problem]) -> str:
    """The conversation through the model's own chat template (ending with the assistant's turn
    opened), as text. The template's own start-of-document token is left to the backend, which
    adds it by the one rule for every context."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise InputError(
            f"model {model.spec} has no chat template to frame the problems with",
            source="--prompt-style",
            fix="Use --prompt-style base for it (a page of worked solutions), or a model loaded "
            "with its tokenizer (an hf id or directory, or a GGUF file with a template)",
        )
    text = tokenizer.apply_chat_template(
        chat_messages(problem, shots), tokenize=False, add_generation_prompt=True
    )
    bos = tokenizer.bos_token
    if bos and text.startswith(bos) and getattr(model, "start_ids", ()):
        text = text[len(bos) :]  # the backend adds it (the model's own start-of-document rule)
    return text


def prompt(model: Any, style: str, problem: Problem, shots: list[Problem]) -> str:
    return base_prompt(problem, shots) if style == "base" else chat_prompt(model, problem, shots)


def stops(style: str) -> tuple[str, ...]:
    """A base model's page goes on to the next problem: stop there. A chat model stops at the end
    of its turn (its end-of-turn token is its EOS)."""
    return BASE_STOP if style == "base" else ()


def arms(models: list[str], prompt_style: str) -> list[dict[str, Any]]:
    """(model, prompt style) pairs to sample: `native` gives the first model (the base) the
    worked-solutions page and the second (the tuned) its chat template; `base`/`chat` give every
    model that framing; `both` gives every model both."""
    if prompt_style not in PROMPT_STYLES:
        raise InputError(
            f"unknown prompt style '{prompt_style}'",
            source="--prompt-style",
            fix=f"Use one of: {', '.join(PROMPT_STYLES)}",
        )
    if prompt_style == "native":
        styles = [["base"], ["chat"]][: len(models)]
    elif prompt_style == "both":
        styles = [list(STYLES)] * len(models)
    else:
        styles = [[prompt_style]] * len(models)
    return [
        {"model": spec, "role": ("base", "tuned")[m], "style": style}
        for m, spec in enumerate(models)
        for style in styles[m]
    ]
