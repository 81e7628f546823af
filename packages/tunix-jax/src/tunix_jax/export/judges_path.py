"""The judges' path: an export's ``params/`` loaded with google-tunix's own loader
(:func:`tunix_jax.export.google_tunix.load_with_google_tunix`, in bfloat16 as
``create_model_from_checkpoint`` defaults to) and sampled greedily with google-tunix's own
``Sampler``, with the export's tokenizer read by SentencePiece, as a grader's notebook
does. Needs ``google-tunix``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import jax.numpy as jnp

from tunix_jax.export.google_tunix import load_with_google_tunix
from tunix_jax.export.writing import PARAMS_DIRNAME, read_export_meta
from tunix_jax.models.gemma.config import get_config
from tunix_jax.models.gemma.tokenizer import END_OF_TURN, TOKENIZER_FILENAME, Tokenizer

JUDGES_DTYPE = jnp.bfloat16


def sample_with_google_tunix(
    directory: str | os.PathLike[str], prompts: Sequence[str], *, max_new_tokens: int
) -> tuple[list[str], list[int]]:
    """Greedy completions of ``prompts`` (rendered turns) through google-tunix, each cut
    at its first ``<end_of_turn>``, and the number of tokens each generated."""
    # optional: google-tunix (the compat extra); sentencepiece comes with it
    import sentencepiece as spm
    from tunix.generate import sampler as sampler_lib

    directory = Path(directory)
    meta, _ = read_export_meta(directory)
    config = get_config(meta["preset"])
    module, _ = load_with_google_tunix(directory / PARAMS_DIRNAME, config, JUDGES_DTYPE)
    ours = Tokenizer.load(directory / TOKENIZER_FILENAME)
    pieces = spm.SentencePieceProcessor(model_proto=ours.model_proto)
    longest_prompt = max(len(ours.encode(p, add_bos=True)) for p in prompts)
    cache = sampler_lib.CacheConfig(
        cache_size=longest_prompt + max_new_tokens,
        num_layers=config.num_layers,
        num_kv_heads=config.num_kv_heads,
        head_dim=config.head_dim,
    )
    sampler = sampler_lib.Sampler(module, pieces, cache)
    output = sampler(list(prompts), max_generation_steps=max_new_tokens,
                     max_prompt_length=longest_prompt, eos_tokens=list(ours.stop_ids))  # fmt: skip
    texts = [text.split(END_OF_TURN, 1)[0] for text in output.text]
    lengths = [len(tokens) for tokens in output.tokens]
    return texts, lengths
