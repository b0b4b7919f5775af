"""``hmx chat``: talk to a trained model in the terminal, or ask it one question from a script.

hmx chat outputs/runs/RUN                          # interactive: streamed replies, history, /reset, /quit
hmx chat outputs/runs/RUN --compare                # each message answered by the base model, then the trained one
hmx chat outputs/runs/RUN --prompt "How do you feel?"          # one-shot: prints the reply and exits
hmx chat path/to/adapter --base Qwen/Qwen3-4B --temperature 0.7 --seed 1
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from typing import cast

import torch
from peft import PeftModel
from transformers import BatchEncoding, GenerationConfig, PreTrainedTokenizerBase, TextStreamer, set_seed

from hmx.config import ConfigError
from hmx.errors import command_errors
from hmx.models import pick_device
from hmx.runs import TrainedRun, load_adapter_model, load_run_tokenizer, locate_run

Message = dict[str, str]
HELP = "/reset clears the history, /quit (or Ctrl-D) exits, /help shows this"
BASE, TRAINED = "base", "trained"


class Chat:
    """One model with its adapter, answering conversations with the adapter on (trained) or off (base)."""

    def __init__(self, run: TrainedRun, args: argparse.Namespace):
        self.device = pick_device(args.device)
        self.tokenizer: PreTrainedTokenizerBase = load_run_tokenizer(run)
        if not self.tokenizer.chat_template:
            raise ConfigError(f"{run.adapter_dir}: the tokenizer has no chat template; hmx chat needs one")
        self.model: PeftModel = load_adapter_model(run, self.device)
        eos = self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id
        sampling = args.temperature > 0
        self.generation = GenerationConfig(
            max_new_tokens=args.max_new_tokens,
            do_sample=sampling,
            temperature=args.temperature if sampling else None,
            top_p=args.top_p if sampling else None,
            eos_token_id=eos,
            pad_token_id=self.tokenizer.pad_token_id,
        )

    def reply(self, messages: list[Message], side: str = TRAINED) -> str:
        """Generate the next assistant turn, streaming it to stdout as it is produced."""
        encoded = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
        )
        inputs = cast(BatchEncoding, encoded).to(self.device)
        streamer = TextStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)  # type: ignore[arg-type]
        adapter = self.model.disable_adapter() if side == BASE else nullcontext()
        with torch.inference_mode(), adapter:
            output = self.model.generate(**inputs, generation_config=self.generation, streamer=streamer)
        prompt_length = inputs["input_ids"].shape[1]
        return str(self.tokenizer.decode(output[0, prompt_length:], skip_special_tokens=True))


class Conversation:
    """The histories of one chat: one per side, so each model sees its own earlier answers."""

    def __init__(self, system_prompt: str | None, sides: list[str]):
        self.opening: list[Message] = [{"role": "system", "content": system_prompt}] if system_prompt else []
        self.sides = sides
        self.reset()

    def reset(self) -> None:
        self.history: dict[str, list[Message]] = {side: list(self.opening) for side in self.sides}

    def turn(self, chat: Chat, text: str, labelled: bool) -> dict[str, str]:
        answers = {}
        for side in self.sides:
            messages = [*self.history[side], {"role": "user", "content": text}]
            if labelled:
                print(f"{side}> ", end="", flush=True)
            answers[side] = chat.reply(messages, side)
            self.history[side] = [*messages, {"role": "assistant", "content": answers[side]}]
        return answers


def interactive(chat: Chat, conversation: Conversation) -> None:
    with suppress(ImportError):
        import readline  # noqa: F401  (line editing and ↑ history for input())
    while True:
        try:
            text = input("you> ").strip()
        except EOFError:
            print()
            return
        if not text:
            continue
        if text in {"/quit", "/exit", "/q"}:
            return
        if text == "/reset":
            conversation.reset()
            print("(history cleared)", flush=True)
            continue
        if text.startswith("/"):
            print(HELP, flush=True)
            continue
        with _interruptible():
            conversation.turn(chat, text, labelled=True)
        print(flush=True)


@contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C while a reply streams stops that reply, not the chat."""
    try:
        yield
    except KeyboardInterrupt:
        print("\n(interrupted)", flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hmx chat", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", metavar="RUN_DIR|ADAPTER", help="a run directory from hmx train, or an adapter")
    parser.add_argument("--base", help="base model (hub id, local path or tiny); default: the run's model")
    parser.add_argument("--prompt", help="one-shot: answer this message, print the reply and exit")
    parser.add_argument("--compare", action="store_true", help="answer with the base model (adapter off) too")
    parser.add_argument("--system", help="system prompt (default: the run's data.system_prompt, if any)")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 (default): greedy, deterministic")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0, help="makes sampled replies reproducible")
    parser.add_argument("--device", default="auto", help="auto (GPU when there is one), cpu, cuda, cuda:1, ...")
    args = parser.parse_args(argv)
    if args.max_new_tokens < 1 or args.temperature < 0 or not 0 < args.top_p <= 1:
        parser.error("--max-new-tokens must be ≥ 1, --temperature ≥ 0 and --top-p in (0, 1]")
    return args


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    with command_errors("chat"):
        run = locate_run(args.source, base=args.base)
        chat = Chat(run, args)
    set_seed(args.seed)
    sides = [BASE, TRAINED] if args.compare else [TRAINED]
    conversation = Conversation(args.system if args.system is not None else run.system_prompt, sides)
    if args.prompt is not None:
        conversation.turn(chat, args.prompt, labelled=args.compare)
        return
    mode = "greedy" if args.temperature == 0 else f"temperature {args.temperature}, seed {args.seed}"
    print(
        f"hmx chat: {run.name} — adapter {run.adapter_dir} on {run.model.name_or_path} ({chat.device}, {mode})\n{HELP}",
        file=sys.stderr,
        flush=True,
    )
    interactive(chat, conversation)


if __name__ == "__main__":
    main(sys.argv[1:])
