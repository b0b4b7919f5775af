"""A Chat Completions server that returns logprobs, for the external judge's logprob path on CPU.

``transformers serve`` ignores ``logprobs``, and the servers that return them (vLLM, llama.cpp's)
need a GPU or a C++ build. This one runs the real model with transformers: the chat template with
the generation prompt, one forward pass, the top ``top_logprobs`` next tokens (log-softmax over
the whole vocabulary) in the shape vLLM and OpenAI return, and the greedy token as the reply.
Only what the external judge's logprob requests use is implemented (no sampling, one token).

    python tests/integration/logprob_server.py MODEL_DIR --port 8000
"""

from __future__ import annotations

import argparse

import torch
import uvicorn
from fastapi import FastAPI, HTTPException
from transformers import AutoModelForCausalLM, AutoTokenizer


def build_app(model_dir: str) -> FastAPI:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    app = FastAPI()

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/v1/chat/completions")
    def chat_completions(body: dict) -> dict:
        if body.get("model") != model_dir:
            raise HTTPException(status_code=404, detail=f"model {body.get('model')!r} is not served")
        text = tokenizer.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1)
        top = torch.topk(logprobs, k=min(int(body.get("top_logprobs") or 1), logprobs.numel()))
        alternatives = [
            {"token": tokenizer.decode([i]), "logprob": float(v), "bytes": list(tokenizer.decode([i]).encode())}
            for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
        ]
        first = alternatives[0]
        logprob_block = {"content": [{**first, "top_logprobs": alternatives}]} if body.get("logprobs") else None
        return {
            "object": "chat.completion",
            "model": model_dir,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": first["token"]},
                    "logprobs": logprob_block,
                    "finish_reason": "length",
                }
            ],
            "usage": {"prompt_tokens": ids.shape[1], "completion_tokens": 1, "total_tokens": ids.shape[1] + 1},
        }

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run(build_app(args.model_dir), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
