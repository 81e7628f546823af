"""Batched text generation with a KV cache, in one compiled program per shape bucket.

Prompts are LEFT-padded to a common length, so every row writes its next token into the
same cache slot and the decode step stays a single dynamic_update_slice. Each row's
positions start at 0 on its first real token; pad slots are masked out of attention.

Shapes are bucketed (batch, prompt length, new-token budget; see `bucket`), and the
prefill plus the whole decode loop (a `lax.while_loop`) form one jitted function, so
repeated calls with similar shapes reuse one compilation.

Besides stop tokens, a row can end at a stop string (``</answer>``, kept in the completion:
see `stop_string_ids`), and two opt-in guards shape the decoding: a no-repeat n-gram size
(a token that would repeat an n-gram the row already generated is never chosen) and a
`TokenBudget` (after N new tokens without a closing string, the sampler writes it itself).
Both travel as fixed-size arrays, so changing them never recompiles; only the n-gram size
is part of the compiled shape.

Given a device mesh (see `tunix_jax.sharding`), generation is data parallel: the rows
of the batch and of the KV cache are split over all of its devices, the parameters are
laid out as the trainer lays them out, and the batch is padded to a multiple of the
device count. With one device the program is the plain single-device one.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from tunix_jax import sharding as mesh_lib
from tunix_jax.models.gemma.tokenizer import Tokenizer
from tunix_jax.models.gemma.transformer import Cache, Transformer

_Tree = TypeVar("_Tree")
# The decode loop's carry: step, KV cache, out, done, lengths, stopped, key, then the
# guards' state: the last tokens (recent), which rows closed the budget's string, how far
# each row is into the budget's forced tokens, and which rows ended at a stop string.
_Carry = tuple[
    jax.Array, Cache | None, jax.Array, jax.Array, jax.Array, jax.Array, jax.Array,
    jax.Array, jax.Array, jax.Array, jax.Array,
]  # fmt: skip

STOP = "stop"  # the row produced a stop token (not included in its tokens)
LENGTH = "length"  # the row reached max_new_tokens

_MIN_PROMPT_BUCKET = 8
_MIN_NEW_TOKENS_BUCKET = 8
_MAX_STOP_IDS = 8  # stop ids travel as a fixed-size array, so changing them never recompiles
# Stop strings (and the budget's closing string) travel as token sequences, right-aligned
# in a fixed-size table (`_string_table`): NO_MATCH slots never match, and ANY_TOKEN pads
# the start of shorter sequences.
_MAX_STRING_SEQUENCES = 8
_MAX_ALTERNATIVES = 16
_STRING_WINDOW = 16
_MAX_FORCED_TOKENS = 32
# Below this many rows a decode step costs about the same (it reads every weight once),
# so compaction stops halving there.
_MIN_COMPACT_ROWS = 4
ANY_TOKEN = -1
NO_MATCH = -3
_NOT_A_TOKEN = -2  # what `recent` holds before a row generated anything
# The characters a stop string is tried after and before, to find the token sequences a
# model can spell it with ("</" alone, ".</" or " </" when it follows a full stop or space).
_CONTEXT_BEFORE = ("", " ", "\n", ".", ",", "0", "7", "a", "x", ")", ">", "=")
_CONTEXT_AFTER = ("", "\n", " ", "<", ".")


def bucket(n: int, minimum: int = 1) -> int:
    """max(n, minimum) rounded up to a quarter-octave step: a multiple of the largest power
    of two <= n / 4 (84 -> 96, 160 -> 160, 1000 -> 1024). Four buckets per doubling keep
    compilations few while wasting at most a quarter of the KV cache, which every decode
    step reads in full."""
    n = max(n, minimum)
    step = max(1, (1 << (n.bit_length() - 1)) // 4)
    return -(-n // step) * step


def cache_length(longest_prompt: int, max_new_tokens: int) -> int:
    """The KV cache slots of a batch whose longest prompt has ``longest_prompt`` tokens:
    the bucketed prompt plus the bucketed new tokens."""
    return bucket(longest_prompt, _MIN_PROMPT_BUCKET) + bucket(max_new_tokens, _MIN_NEW_TOKENS_BUCKET)


@dataclasses.dataclass(frozen=True)
class GenerationOutput:
    """New token ids per prompt (without the stop token), why each row ended, and the
    stop token each row produced (``None`` for a row that reached the budget)."""

    tokens: list[list[int]]
    stop_reasons: list[str]
    stop_tokens: list[int | None] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class TokenBudget:
    """After ``tokens`` new tokens of a row without ``close`` among them, the sampler
    writes ``then_write`` itself (whatever the model would have chosen) and the row goes
    on freely. For a reasoning budget: ``TokenBudget(n, "</reasoning>",
    "</reasoning><answer>")``."""

    tokens: int
    close: str
    then_write: str


def stop_string_ids(tokenizer: Tokenizer, text: str) -> list[tuple[int, ...]]:
    """The token sequences that spell ``text`` in the contexts a model meets it in: for
    each context, the shortest run of tokens whose decoded text holds ``text``. The first
    token of a run may start with a character before ``text`` ("." for ".</"), and its last
    may run past it (">" of "><")."""
    if not text:
        raise ValueError("a stop string must not be empty")
    found: dict[tuple[int, ...], None] = {}
    for before in _CONTEXT_BEFORE:
        for after in _CONTEXT_AFTER:
            ids = tokenizer.encode(before + text + after)
            ends = [e for e in range(1, len(ids) + 1) if text in tokenizer.decode(ids[:e])]
            if not ends:  # the tokenizer could not spell it back (unknown characters)
                continue
            end = ends[0]
            start = max(s for s in range(end) if text in tokenizer.decode(ids[s:end]))
            found[tuple(ids[start:end])] = None
    return list(found)


def _string_table(sequences: Sequence[Sequence[int]], window: int) -> np.ndarray:
    """``sequences`` as a [_MAX_STRING_SEQUENCES, window, _MAX_ALTERNATIVES] table: those of
    one length share a row, right-aligned, each position holding the ids any of them has
    there (so ".</" + "answer" + ">" and "</" + "answer" + "><" also cover ".</answer><")."""
    by_length: dict[int, list[Sequence[int]]] = {}
    for sequence in sequences:
        if not 0 < len(sequence) <= window:
            raise ValueError(f"a stop sequence needs 1 to {window} tokens, got {len(sequence)}")
        by_length.setdefault(len(sequence), []).append(sequence)
    if len(by_length) > _MAX_STRING_SEQUENCES:
        raise ValueError(f"stop sequences of at most {_MAX_STRING_SEQUENCES} lengths, "
                         f"got {len(by_length)}")  # fmt: skip
    table = np.full((_MAX_STRING_SEQUENCES, window, _MAX_ALTERNATIVES), NO_MATCH, np.int32)
    for row, (length, group) in enumerate(sorted(by_length.items())):
        table[row, : window - length, 0] = ANY_TOKEN
        for position in range(length):
            ids = sorted({sequence[position] for sequence in group})
            if len(ids) > _MAX_ALTERNATIVES:
                raise ValueError(f"at most {_MAX_ALTERNATIVES} tokens per position of a stop "
                                 f"sequence, got {len(ids)}")  # fmt: skip
            table[row, window - length + position, : len(ids)] = ids
    return table


def _ends_with_any(recent: jax.Array, table: jax.Array) -> jax.Array:
    """[B] whether a row's last tokens ``recent`` [B, W] end with a sequence of ``table``."""
    token = recent[:, None, :, None]
    same = jnp.any((table[None] == ANY_TOKEN) | (token == table[None]), axis=-1)
    return jnp.any(jnp.all(same, axis=-1), axis=-1)


def _push(recent: jax.Array, token: jax.Array) -> jax.Array:
    return jnp.concatenate([recent[:, 1:], token[:, None]], axis=1)


def _ban_repeats(logits: jax.Array, out: jax.Array, recent: jax.Array, step: jax.Array,
                 size: int) -> jax.Array:  # fmt: skip
    """``logits`` [B, V] with every token that would complete an n-gram (n = ``size``)
    already among the row's generated tokens ``out[:, :step]`` set to -inf."""
    batch, num_new = out.shape
    starts = num_new - size + 1
    if starts < 1:
        return logits
    context = recent[:, recent.shape[1] - (size - 1) :]  # the last size - 1 tokens
    windows = jnp.stack([out[:, k : k + starts] for k in range(size - 1)], axis=-1)
    following = out[:, size - 1 : size - 1 + starts]
    # An n-gram starting at j was generated in full once j + size - 1 < step.
    seen = jnp.all(windows == context[:, None, :], axis=-1) & (jnp.arange(starts) <= step - size)
    ban = jnp.where(seen, -jnp.inf, jnp.inf).astype(logits.dtype)
    result: jax.Array = logits.at[jnp.arange(batch)[:, None], following].min(ban)
    return result


def _sample(
    logits: jax.Array,
    key: jax.Array,
    temperature: jax.Array,
    top_p: jax.Array,
    *,
    greedy: bool,
    top_k: int | None,
    use_top_p: bool,
) -> jax.Array:
    """Next token ids [B] from logits [B, V]."""
    logits = logits.astype(jnp.float32)
    if greedy:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    logits = logits / temperature
    if top_k is not None:
        logits, candidates = jax.lax.top_k(logits, top_k)  # sorted, descending
    else:
        candidates = None
    if use_top_p:
        if candidates is None:
            order = jnp.argsort(-logits, axis=-1)
            logits = jnp.take_along_axis(logits, order, axis=-1)
            candidates = order
        probs = jax.nn.softmax(logits, axis=-1)
        # Keep the smallest prefix whose mass reaches top_p (the first token always stays).
        mass_before = jnp.cumsum(probs, axis=-1) - probs
        logits = jnp.where(mass_before < top_p, logits, -jnp.inf)
    choice = jax.random.categorical(key, logits, axis=-1)
    if candidates is not None:
        choice = jnp.take_along_axis(candidates, choice[:, None], axis=-1)[:, 0]
    return choice.astype(jnp.int32)


def _split_rows(tree: _Tree, rows: NamedSharding | None) -> _Tree:
    """Pin every array with a batch axis (all but the scalars) to ``rows``, so the KV cache
    and the decode loop's carry stay split by rows instead of whatever propagation picks."""
    if rows is None:
        return tree

    def pin(x: jax.Array) -> jax.Array:
        return jax.lax.with_sharding_constraint(x, rows) if x.ndim else x  # type: ignore[no-untyped-call]  # unannotated in jax

    result: _Tree = jax.tree.map(pin, tree)
    return result


def _generate(
    graphdef: nnx.GraphDef[Transformer],
    state: nnx.State[Any, Any],
    tokens: jax.Array,  # [B, P] int32, left-padded
    pad_lengths: jax.Array,  # [B] int32
    active: jax.Array,  # [B] bool, False for rows that only fill the batch bucket
    max_new_tokens: jax.Array,  # int32 scalar <= num_new
    key: jax.Array,
    temperature: jax.Array,
    top_p: jax.Array,
    stops: jax.Array,  # [_MAX_STOP_IDS] int32, unused slots -1
    stop_strings: jax.Array,  # int32, a `_string_table`
    budget_tokens: jax.Array,  # int32 scalar: free tokens before `forced` is written
    budget_close: jax.Array,  # a `_string_table`: what ends the budget
    forced: jax.Array,  # [_MAX_FORCED_TOKENS] int32
    forced_len: jax.Array,  # int32 scalar, 0 without a budget
    *,
    num_new: int,
    greedy: bool,
    top_k: int | None,
    use_top_p: bool,
    pad_id: int,
    window: int,
    no_repeat_ngram_size: int | None,
    compact_sizes: tuple[int, ...],
    rows: NamedSharding | None,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    model: Transformer = nnx.merge(graphdef, state)
    batch, prompt_len = tokens.shape
    cache_len = prompt_len + num_new
    slots = jnp.arange(cache_len)
    real_key = slots[None, :] >= pad_lengths[:, None]  # [B, S]
    sample = functools.partial(_sample, greedy=greedy, top_k=top_k, use_top_p=use_top_p)

    # Prefill: causal over real slots; a pad query sees itself so its softmax stays finite.
    query_slots = jnp.arange(prompt_len)
    causal = slots[None, None, :] <= query_slots[None, :, None]
    itself = slots[None, None, :] == query_slots[None, :, None]
    mask = (real_key[:, None, :] & causal) | itself
    positions = jnp.maximum(query_slots[None, :] - pad_lengths[:, None], 0)
    cache: Cache | None = model.init_cache(batch, cache_len)
    logits, cache = model(tokens, positions, mask, cache, last_only=True)

    key, step_key = jax.random.split(key)
    first = sample(logits[:, -1], step_key, temperature, top_p)
    recent = _push(jnp.full((batch, window), _NOT_A_TOKEN, jnp.int32), first)
    at_string = ~jnp.isin(first, stops) & _ends_with_any(recent, stop_strings)
    done = ~active | jnp.isin(first, stops) | at_string
    out = jnp.full((batch, num_new), pad_id, jnp.int32).at[:, 0].set(first)
    lengths = jnp.where(active & ~jnp.isin(first, stops), 1, 0).astype(jnp.int32)
    stopped = active & (jnp.isin(first, stops) | at_string)
    closed = _ends_with_any(recent, budget_close)
    forced_at = jnp.zeros((batch,), jnp.int32)

    def keep_going(carry: _Carry) -> jax.Array:
        step, _, _, done, *_ = carry
        return (step < max_new_tokens) & ~jnp.all(done)

    def decode_one(real_key: jax.Array, pad_lengths: jax.Array, carry: _Carry) -> _Carry:
        step, cache, out, done, lengths, stopped, key, recent, closed, forced_at, at_string = carry
        previous = out[:, step - 1]
        slot = prompt_len + step - 1
        step_mask = (real_key & (slots[None, :] <= slot))[:, None, :]
        step_positions = (slot - pad_lengths)[:, None]
        logits, cache = model(previous[:, None], step_positions, step_mask, cache)
        next_logits = logits[:, 0]
        if no_repeat_ngram_size is not None:
            next_logits = _ban_repeats(next_logits, out, recent, step, no_repeat_ngram_size)
        key, step_key = jax.random.split(key)
        token = sample(next_logits, step_key, temperature, top_p)
        # The budget: once a row spent it unclosed, write `forced` one token a step.
        force = (forced_at < forced_len) & ((forced_at > 0) | (~closed & (step >= budget_tokens)))
        token = jnp.where(force, forced[jnp.minimum(forced_at, _MAX_FORCED_TOKENS - 1)], token)
        forced_at = forced_at + force
        recent = _push(recent, token)
        closed = closed | _ends_with_any(recent, budget_close)
        is_stop = jnp.isin(token, stops)
        ends_string = ~done & ~is_stop & _ends_with_any(recent, stop_strings)
        out = out.at[:, step].set(jnp.where(done, pad_id, token))
        lengths = lengths + (~done & ~is_stop)  # a stop string's tokens stay
        stopped = stopped | (~done & is_stop) | ends_string
        carry = (step + 1, cache, out, done | is_stop | ends_string, lengths, stopped, key,
                 recent, closed, forced_at, at_string | ends_string)  # fmt: skip
        return _split_rows(carry, rows)

    carry = _split_rows((jnp.int32(1), cache, out, done, lengths, stopped, key, recent, closed,
                         forced_at, at_string), rows)  # fmt: skip
    # Compaction: once no more than `size` rows are still running, the loop stops, those
    # rows (with their cache) are gathered into a batch of `size`, and decoding goes on
    # there, so the last long rows stop paying for the whole batch. `results` holds every
    # row's outputs in the original order; `origin` maps the current rows to it.
    results = (out, lengths, stopped, at_string)
    origin = jnp.arange(batch)
    for size in compact_sizes:

        def until_few(carry: _Carry, size: int = size) -> jax.Array:
            return keep_going(carry) & (jnp.sum(~carry[3]) > size)

        carry = jax.lax.while_loop(until_few, functools.partial(decode_one, real_key,
                                                                pad_lengths), carry)  # fmt: skip
        results = _write_rows(results, origin, carry)
        keep = jnp.argsort(carry[3], stable=True)[:size]  # running rows first
        carry = _take_rows(carry, keep)
        origin, real_key, pad_lengths = origin[keep], real_key[keep], pad_lengths[keep]
    carry = jax.lax.while_loop(keep_going, functools.partial(decode_one, real_key, pad_lengths),
                               carry)  # fmt: skip
    if not compact_sizes:
        return carry[2], carry[4], carry[5], carry[10]
    return _write_rows(results, origin, carry)


def compact_sizes(batch: int) -> tuple[int, ...]:
    """The batches `_generate` shrinks to as rows finish: halving while at least
    `_MIN_COMPACT_ROWS` rows remain (48 -> 24, 12, 6). Measured on the trained default
    model's eval completions, this cuts the decoded row-steps by 40-47 %."""
    sizes: list[int] = []
    size = batch // 2
    while size >= _MIN_COMPACT_ROWS:
        sizes.append(size)
        size //= 2
    return tuple(sizes)


def _take_rows(carry: _Carry, keep: jax.Array) -> _Carry:
    """The decode carry restricted to the rows ``keep``; the step and the key are shared."""
    step, cache, *per_row = carry
    assert cache is not None  # the decode loop always carries a cache
    cache = {"index": cache["index"],
             "layers": [{name: kv[keep] for name, kv in layer.items()} for layer in cache["layers"]]}  # fmt: skip
    out, done, lengths, stopped, key, recent, closed, forced_at, at_string = per_row
    rows = (out, done, lengths, stopped, recent, closed, forced_at, at_string)
    out, done, lengths, stopped, recent, closed, forced_at, at_string = (x[keep] for x in rows)
    return (step, cache, out, done, lengths, stopped, key, recent, closed, forced_at, at_string)


def _write_rows(
    results: tuple[jax.Array, jax.Array, jax.Array, jax.Array], origin: jax.Array, carry: _Carry
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """``results`` (out, lengths, stopped, at_string of the whole batch) with the rows
    ``origin`` replaced by the carry's."""
    current = (carry[2], carry[4], carry[5], carry[10])
    out, lengths, stopped, at_string = (
        whole.at[origin].set(rows) for whole, rows in zip(results, current, strict=True)
    )
    return out, lengths, stopped, at_string


# Streaming: `_generate`'s prefill and its decode step as two programs, so a Python loop can
# hand out each token as it is decoded. Same masks, positions, cache layout and greedy
# choice as `_generate`, so the tokens are the ones it returns.


def _greedy(logits: jax.Array) -> jax.Array:
    return jnp.argmax(logits.astype(jnp.float32), axis=-1).astype(jnp.int32)


def _prefill(
    graphdef: nnx.GraphDef[Transformer],
    state: nnx.State[Any, Any],
    tokens: jax.Array,  # [B, P] int32, left-padded
    pad_lengths: jax.Array,  # [B] int32
    *,
    cache_len: int,
    rows: NamedSharding | None,
) -> tuple[jax.Array, Cache]:
    """The first greedy token [B] of each prompt and the KV cache the prompts filled."""
    model: Transformer = nnx.merge(graphdef, state)
    batch, prompt_len = tokens.shape
    slots = jnp.arange(cache_len)
    real_key = slots[None, :] >= pad_lengths[:, None]
    query_slots = jnp.arange(prompt_len)
    causal = slots[None, None, :] <= query_slots[None, :, None]
    itself = slots[None, None, :] == query_slots[None, :, None]
    mask = (real_key[:, None, :] & causal) | itself
    positions = jnp.maximum(query_slots[None, :] - pad_lengths[:, None], 0)
    logits, cache = model(tokens, positions, mask, model.init_cache(batch, cache_len), last_only=True)
    assert cache is not None  # a model given a cache returns one
    return _split_rows((_greedy(logits[:, -1]), cache), rows)


def _decode_step(
    graphdef: nnx.GraphDef[Transformer],
    state: nnx.State[Any, Any],
    cache: Cache,
    previous: jax.Array,  # [B] int32, the tokens chosen last step
    slot: jax.Array,  # int32 scalar, the cache slot `previous` is written to
    pad_lengths: jax.Array,  # [B] int32
    *,
    rows: NamedSharding | None,
) -> tuple[jax.Array, Cache]:
    """The next greedy token [B] after ``previous``, and the cache holding ``previous``."""
    model: Transformer = nnx.merge(graphdef, state)
    slots = jnp.arange(cache["layers"][0]["k"].shape[1])
    real_key = slots[None, :] >= pad_lengths[:, None]
    step_mask = (real_key & (slots[None, :] <= slot))[:, None, :]
    step_positions = (slot - pad_lengths)[:, None]
    logits, new_cache = model(previous[:, None], step_positions, step_mask, cache)
    assert new_cache is not None  # a model given a cache returns one
    return _split_rows((_greedy(logits[:, 0]), new_cache), rows)


_REPLACEMENT_CHARACTER = "\ufffd"


def cut_after(text: str, stop_strings: Sequence[str]) -> str:
    """``text`` up to the end of the first of ``stop_strings`` in it: a token that ended a
    row at a stop string may carry characters past it ("><")."""
    ends = [text.index(stop) + len(stop) for stop in stop_strings if stop in text]
    return text[: min(ends)] if ends else text


def _cut_stream(pieces: Iterable[str], stop_strings: Sequence[str]) -> Iterator[str]:
    """``pieces`` until one of ``stop_strings`` is complete, cut as `cut_after` cuts."""
    sent = ""
    for piece in pieces:
        text = cut_after(sent + piece, stop_strings)
        if len(text) > len(sent):
            yield text[len(sent) :]
        sent = text
        if any(stop in text for stop in stop_strings):
            return


def text_deltas(tokenizer: Tokenizer, token_ids: Iterable[int]) -> Iterator[str]:
    """The text of ``token_ids`` piece by piece as the ids arrive: each piece is what the
    latest ids add to the decoded text. Joined, the pieces equal ``tokenizer.decode`` of
    all the ids. A trailing U+FFFD waits for the next id, since it may be a multi-byte
    character whose remaining bytes are still to come."""
    ids: list[int] = []
    sent = ""
    for token in token_ids:
        ids.append(token)
        text = tokenizer.decode(ids).rstrip(_REPLACEMENT_CHARACTER)
        # UTF-8 decoding never rewrites complete characters, so `sent` stays a prefix.
        if len(text) > len(sent) and text.startswith(sent):
            yield text[len(sent) :]
            sent = text
    rest = tokenizer.decode(ids)[len(sent) :]
    if rest:
        yield rest


class Sampler:
    """Generates completions for batches of prompts from a `Transformer`.

    With a ``mesh`` of several devices, rows are split over all of them (data parallel)
    and the first call moves the model's parameters, in place, to the trainer's layout on
    that mesh.
    """

    def __init__(self, model: Transformer, tokenizer: Tokenizer, mesh: Mesh | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.mesh = mesh if mesh is not None and mesh.size > 1 else None
        graphdef, _ = nnx.split(model)
        static = ("num_new", "greedy", "top_k", "use_top_p", "pad_id", "window",
                  "no_repeat_ngram_size", "compact_sizes")  # fmt: skip
        if self.mesh is None:
            generate = functools.partial(_generate, graphdef, rows=None)
            self._compiled = jax.jit(generate, static_argnames=static)
        else:
            rows = mesh_lib.batch_sharding(self.mesh)
            generate = functools.partial(_generate, graphdef, rows=rows)
            # Replicated results: every process (of a multi-host mesh) can read all rows.
            everywhere = PartitionSpec()  # type: ignore[no-untyped-call]  # jaxlib has no stubs
            replicated = NamedSharding(self.mesh, everywhere)
            self._compiled = jax.jit(generate, static_argnames=static, out_shardings=replicated)

    @property
    def ways(self) -> int:
        """How many devices share each batch."""
        return 1 if self.mesh is None else self.mesh.size

    def batch_size(self, num_rows: int) -> int:
        """The padded batch for ``num_rows`` prompts: the rows per device bucketed (see
        `bucket`), times the device count."""
        return bucket(-(-num_rows // self.ways)) * self.ways

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int = 0,
        stop_strings: Sequence[str] = (),
        no_repeat_ngram_size: int | None = None,
        budget: TokenBudget | None = None,
    ) -> list[str]:
        """Completions (without the prompt and the stop token), one per prompt. A
        completion that reaches one of ``stop_strings`` ends right after it (the string is
        kept); the other options are `generate_ids`'."""
        ids = [self.tokenizer.encode(prompt, add_bos=True) for prompt in prompts]
        result = self.generate_ids(
            ids,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            stop_strings=stop_strings,
            no_repeat_ngram_size=no_repeat_ngram_size,
            budget=budget,
        )
        return [cut_after(self.tokenizer.decode(tokens), stop_strings) for tokens in result.tokens]

    def generate_ids(
        self,
        prompt_ids: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int = 0,
        stop_ids: Sequence[int] | None = None,
        stop_strings: Sequence[str] = (),
        no_repeat_ngram_size: int | None = None,
        budget: TokenBudget | None = None,
    ) -> GenerationOutput:
        """New token ids and stop reasons ("stop" or "length") for already tokenized prompts.

        temperature 0 is greedy decoding. stop_ids defaults to the tokenizer's `<eos>` and
        `<end_of_turn>`; pass () to always generate max_new_tokens tokens. A row also
        stops once its tokens end with a spelling of one of ``stop_strings``
        (`stop_string_ids`); those tokens stay in it. ``no_repeat_ngram_size`` n (>= 2)
        never lets a row repeat an n-gram of its own new tokens; ``budget`` is a
        `TokenBudget`.
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if top_k is not None:
            top_k = min(top_k, self.model.config.vocab_size)
        if top_p is not None and not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if no_repeat_ngram_size is not None and no_repeat_ngram_size < 2:
            raise ValueError(f"no_repeat_ngram_size must be >= 2, got {no_repeat_ngram_size}")
        if budget is not None and budget.tokens < 1:
            raise ValueError(f"a token budget must be >= 1, got {budget.tokens}")
        if not prompt_ids:
            return GenerationOutput([], [])
        if any(len(ids) == 0 for ids in prompt_ids):
            raise ValueError("every prompt needs at least one token")
        window = max(_STRING_WINDOW, (no_repeat_ngram_size or 1) - 1)
        string_table = _string_table(self._spellings(stop_strings), window)
        if budget is None:
            close_table = _string_table((), window)
            forced_ids: list[int] = []
        else:
            close_table = _string_table(self._spellings([budget.close]), window)
            forced_ids = self.tokenizer.encode(budget.then_write)
            if not 0 < len(forced_ids) <= _MAX_FORCED_TOKENS:
                raise ValueError(f"a budget writes 1 to {_MAX_FORCED_TOKENS} tokens, "
                                 f"got {len(forced_ids)}")  # fmt: skip
        forced = np.zeros((_MAX_FORCED_TOKENS,), np.int32)
        forced[: len(forced_ids)] = forced_ids

        num_rows = len(prompt_ids)
        batch = self.batch_size(num_rows)
        prompt_len = bucket(max(len(ids) for ids in prompt_ids), _MIN_PROMPT_BUCKET)
        num_new = bucket(max_new_tokens, _MIN_NEW_TOKENS_BUCKET)
        pad_id = self.tokenizer.pad_id
        tokens = np.full((batch, prompt_len), pad_id, np.int32)
        pad_lengths = np.full((batch,), prompt_len - 1, np.int32)
        tokens[num_rows:, -1] = self.tokenizer.bos_id  # filler rows, never reported
        for row, ids in enumerate(prompt_ids):
            tokens[row, prompt_len - len(ids) :] = ids
            pad_lengths[row] = prompt_len - len(ids)
        active = np.arange(batch) < num_rows
        stops = list(self.tokenizer.stop_ids if stop_ids is None else stop_ids)
        if len(stops) > _MAX_STOP_IDS:
            raise ValueError(f"at most {_MAX_STOP_IDS} stop ids, got {len(stops)}")
        stops += [-1] * (_MAX_STOP_IDS - len(stops))

        state = self._placed_state()
        host_rows = (tokens, pad_lengths, active)
        by_row: tuple[jax.Array, ...]
        if self.mesh is None:
            by_row = tuple(jnp.asarray(array) for array in host_rows)
        else:
            sharding = mesh_lib.batch_sharding(self.mesh)
            by_row = tuple(mesh_lib.put_global(array, sharding) for array in host_rows)
        out, lengths, stopped, at_string = self._compiled(
            state,
            *by_row,
            jnp.int32(max_new_tokens),
            jax.random.key(seed),
            jnp.float32(max(temperature, 1e-6)),
            jnp.float32(1.0 if top_p is None else top_p),
            jnp.asarray(stops, jnp.int32),
            jnp.asarray(string_table),
            jnp.int32(budget.tokens if budget is not None else np.iinfo(np.int32).max),
            jnp.asarray(close_table),
            jnp.asarray(forced),
            jnp.int32(len(forced_ids)),
            num_new=num_new,
            greedy=temperature == 0.0,
            top_k=top_k,
            use_top_p=top_p is not None and top_p < 1.0,
            pad_id=pad_id,
            window=window,
            no_repeat_ngram_size=no_repeat_ngram_size,
            # Gathering rows across devices would move the cache between them: compaction
            # is for the single-device program.
            compact_sizes=compact_sizes(batch) if self.mesh is None else (),
        )
        out, lengths, stopped, at_string = jax.device_get((out, lengths, stopped, at_string))
        return GenerationOutput(
            tokens=[out[row, : lengths[row]].tolist() for row in range(num_rows)],
            stop_reasons=[STOP if stopped[row] else LENGTH for row in range(num_rows)],
            # A stop token sits right after a stopped row's last kept token; a row that
            # ended at a stop string kept all of it and has none.
            stop_tokens=[
                int(out[row, lengths[row]]) if stopped[row] and not at_string[row] else None
                for row in range(num_rows)
            ],
        )

    def _spellings(self, strings: Sequence[str]) -> list[tuple[int, ...]]:
        return [ids for text in strings for ids in stop_string_ids(self.tokenizer, text)]

    def stream(
        self, prompt: str, *, max_new_tokens: int, stop_strings: Sequence[str] = ()
    ) -> Iterator[str]:
        """The greedy completion of ``prompt`` as text pieces, each handed out as soon as
        it is decoded; joined, they equal ``generate([prompt], ...)[0]``."""
        ids = self.tokenizer.encode(prompt, add_bos=True)
        tokens = self.stream_ids(ids, max_new_tokens=max_new_tokens, stop_strings=stop_strings)
        return _cut_stream(text_deltas(self.tokenizer, tokens), stop_strings)

    def stream_ids(
        self,
        prompt_ids: Sequence[int],
        *,
        max_new_tokens: int,
        stop_ids: Sequence[int] | None = None,
        stop_strings: Sequence[str] = (),
    ) -> Iterator[int]:
        """The new token ids of one prompt, greedy, each yielded as soon as it is decoded,
        until a stop token (not yielded; ``stop_ids`` as in `generate_ids`) or
        ``max_new_tokens``: the tokens `generate_ids` returns for that prompt at
        temperature 0 (``stop_strings`` too). Decoding runs only while the iterator is consumed, so closing it
        (or interrupting the loop that reads it) stops the generation. Single-process
        meshes only: every step reads its token back to the host."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if not prompt_ids:
            raise ValueError("the prompt needs at least one token")
        stops = set(self.tokenizer.stop_ids if stop_ids is None else stop_ids)
        string_table = jnp.asarray(_string_table(self._spellings(stop_strings), _STRING_WINDOW))
        recent = jnp.full((1, _STRING_WINDOW), _NOT_A_TOKEN, jnp.int32)
        # The batch and cache shapes of `generate_ids` for one prompt, so the numbers match.
        batch = self.batch_size(1)
        prompt_len = bucket(len(prompt_ids), _MIN_PROMPT_BUCKET)
        cache_len = cache_length(len(prompt_ids), max_new_tokens)
        tokens = np.full((batch, prompt_len), self.tokenizer.pad_id, np.int32)
        pad_lengths = np.full((batch,), prompt_len - 1, np.int32)
        tokens[1:, -1] = self.tokenizer.bos_id  # filler rows, never read
        tokens[0, prompt_len - len(prompt_ids) :] = prompt_ids
        pad_lengths[0] = prompt_len - len(prompt_ids)

        prefill, decode_step = self._streaming_programs
        state = self._placed_state()
        if self.mesh is None:
            placed = (jnp.asarray(tokens), jnp.asarray(pad_lengths))
        else:
            sharding = mesh_lib.batch_sharding(self.mesh)
            placed = (mesh_lib.put_global(tokens, sharding), mesh_lib.put_global(pad_lengths, sharding))
        token, cache = prefill(state, *placed, cache_len=cache_len)
        for step in range(max_new_tokens):
            if step:
                slot = jnp.int32(prompt_len + step - 1)
                token, cache = decode_step(state, cache, token, slot, placed[1])
            token_id = int(jax.device_get(token)[0])
            if token_id in stops:
                return
            yield token_id
            recent = _push(recent, jnp.asarray([token_id], jnp.int32))
            if stop_strings and bool(_ends_with_any(recent, string_table)[0]):
                return

    @functools.cached_property
    def _streaming_programs(self) -> tuple[Any, Any]:
        """The jitted `_prefill` and `_decode_step`; the step reuses the cache's buffers."""
        graphdef, _ = nnx.split(self.model)
        rows = None if self.mesh is None else mesh_lib.batch_sharding(self.mesh)
        prefill = jax.jit(
            functools.partial(_prefill, graphdef, rows=rows), static_argnames=("cache_len",)
        )
        decode_step = jax.jit(
            functools.partial(_decode_step, graphdef, rows=rows), donate_argnames=("cache",)
        )
        return prefill, decode_step

    def _placed_state(self) -> nnx.State[Any, Any]:
        """The model's state, on a mesh laid out as the trainer lays it out. The layout is
        written back into the model, so later calls find it in place (device_put is then
        a no-op)."""
        _, state = nnx.split(self.model)
        if self.mesh is not None:
            state = jax.device_put(state, mesh_lib.state_shardings(self.mesh, state))
            nnx.update(self.model, state)
        low = self.model.matmul_dtype
        if low is not None:
            # Every decode step reads all weight matrices: rounded once here (as each
            # matmul would round them anyway), they cost half the memory traffic.
            state = jax.tree.map(
                lambda x: x.astype(low) if x.ndim >= 2 and jnp.issubdtype(x.dtype, jnp.floating) else x,
                state,
            )
        return state
