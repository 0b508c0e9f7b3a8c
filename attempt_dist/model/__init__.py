"""Building the model: backbones, tokenizer, a method wrapped around the frozen T5, counts."""
