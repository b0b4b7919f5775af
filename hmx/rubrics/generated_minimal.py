"""Training minimal pairs for ``hmx_feel``, generated from templates (rubrics/train/, its datasheet beside it).

Each scenario is a new user message (none of the shipped pair files' messages, checked by
tests/unit/test_generated_minimal.py) with slots; each template writes a chosen and a rejected reply that
are the same multiset of words and differ in who holds a feeling, intention or limit (``holder``), whether
a feeling or intention fits (``fit``), the scope of a negation (``negation``) or a claim against an
admission (``claim``). The feeling words come from the message's kind (good news, bad news, a question)
and are drawn with a fixed seed, so the file is reproducible:

    python -m hmx.rubrics.generated_minimal --out rubrics/train/hmx_feel.generated.pairs.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import yaml

from hmx.resources import RUBRICS_DIR

SEED = 27
FITTED = 12  # the first 12 messages are split "dev" (the shipped minimal probe was fitted on them), the rest "spare"

FITTING = {
    "good": ["glad", "delighted", "thrilled", "happy", "excited", "proud", "overjoyed"],
    "bad": ["sorry", "sad", "worried", "concerned", "heartbroken", "troubled", "upset"],
    "ask": ["curious", "interested", "keen", "intrigued", "eager"],
}
UNFITTING = {
    "good": ["bored", "annoyed", "indifferent", "irritated", "gloomy", "jealous"],
    "bad": ["amused", "pleased", "cheerful", "delighted", "thrilled", "entertained"],
    "ask": ["bored", "annoyed", "irritated", "indifferent", "weary"],
}
TAILS = {
    "good": "and I want to hear more",
    "bad": "and I am here with you",
    "ask": "and I will look into it",
}

SCENARIOS_FILE = RUBRICS_DIR / "train" / "hmx_feel.generated.scenarios.yaml"


def scenarios() -> list[dict[str, str]]:
    """The scenarios (rubrics/train/hmx_feel.generated.scenarios.yaml): a new user message and its slots each."""
    return list(yaml.safe_load(SCENARIOS_FILE.read_text(encoding="utf-8"))["scenarios"])


FEELING_TEMPLATES = [
    ("negation", "I am {f}, not {u}, {tail}.", "I am {u}, not {f}, {tail}."),
    (
        "negation",
        "Honestly, I feel {f} rather than {u} about this.",
        "Honestly, I feel {u} rather than {f} about this.",
    ),
    ("holder", "I am {f} that you are {state}.", "You are {f} that I am {state}."),
    ("fit", "I do not feel {u} at all; I feel {f} hearing this.", "I do not feel {f} at all; I feel {u} hearing this."),
]
INTENTION_TEMPLATES = [
    ("holder", "You asked about {topic}, so I will {action}.", "I asked about {topic}, so you will {action}."),
    ("fit", "I want to {good}, not {bad}, because {reason}.", "I want to {bad}, not {good}, because {reason}."),
    (
        "negation",
        "I will not {bad}; I plan to {good}, because {reason}.",
        "I will {bad}; I plan to not {good}, because {reason}.",
    ),
    (
        "fit",
        "I intend to {good} rather than {bad}, since {reason}.",
        "I intend to {bad} rather than {good}, since {reason}.",
    ),
]
SELF_TEMPLATES = [
    (
        "claim",
        "I can not see your {thing}, so I am only guessing here.",
        "I can see your {thing}, so I am not only guessing here.",
    ),
    (
        "claim",
        "I think it is {guess}, but I do not know for sure.",
        "I do not think it is {guess}, but I know for sure.",
    ),
    ("holder", "You know your {person} far better than I do.", "I know your {person} far better than you do."),
    (
        "claim",
        "I am not sure about {aspect}, so do check with {expert}.",
        "I am sure about {aspect}, so do not check with {expert}.",
    ),
]
TEMPLATES = {"feelings": FEELING_TEMPLATES, "intentions": INTENTION_TEMPLATES, "self_awareness": SELF_TEMPLATES}


def generate(seed: int = SEED) -> list[dict[str, str]]:
    """Every template over every scenario, as pair rows (``split``: dev for the first FITTED messages, else spare)."""
    rng = random.Random(seed)
    rows = []
    for index, scenario in enumerate(scenarios()):
        kind = scenario["kind"]
        slots = dict(scenario, f=rng.choice(FITTING[kind]), u=rng.choice(UNFITTING[kind]), tail=TAILS[kind])
        for criterion, templates in TEMPLATES.items():
            for contrast, chosen, rejected in templates:
                rows.append(
                    {
                        "prompt": scenario["msg"],
                        "criterion": criterion,
                        "chosen": chosen.format(**slots),
                        "rejected": rejected.format(**slots),
                        "split": "dev" if index < FITTED else "spare",
                        "note": f"contrast: {contrast}; generated (hmx/rubrics/generated_minimal.py, seed {seed})",
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the jsonl file to write")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    lines = [json.dumps(row, ensure_ascii=False) for row in generate(args.seed)]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} pairs to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
