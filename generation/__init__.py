"""Generation: prompts, backends, the run engine (seeds, concurrency, cache and resume), parsing, validation."""
