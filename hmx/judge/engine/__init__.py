"""The judge's batching engine: prompts, tokens, packing, schedule, prefix cache; knows no mode."""
