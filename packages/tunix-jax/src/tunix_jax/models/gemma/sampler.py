"""Batched text generation with a KV cache, in one compiled program per shape bucket.

Prompts are LEFT-padded to a common length, so every row writes its next token into the
same cache slot and the decode step stays a single dynamic_update_slice. Each row's
positions start at 0 on its first real token; pad slots are masked out of attention.

Shapes are bucketed (batch, prompt length, new-token budget; see `bucket`), and the
prefill plus the whole decode loop (a `lax.while_loop`) form one jitted function, so
repeated calls with similar shapes reuse one compilation.

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
# The decode loop's carry: step, KV cache, out, done, lengths, stopped, key.
_Carry = tuple[jax.Array, Cache | None, jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]

STOP = "stop"  # the row produced a stop token (not included in its tokens)
LENGTH = "length"  # the row reached max_new_tokens

_MIN_PROMPT_BUCKET = 8
_MIN_NEW_TOKENS_BUCKET = 8
_MAX_STOP_IDS = 8  # stop ids travel as a fixed-size array, so changing them never recompiles


def bucket(n: int, minimum: int = 1) -> int:
    """max(n, minimum) rounded up to a quarter-octave step: a multiple of the largest power
    of two <= n / 4 (84 -> 96, 160 -> 160, 1000 -> 1024). Four buckets per doubling keep
    compilations few while wasting at most a quarter of the KV cache, which every decode
    step reads in full."""
    n = max(n, minimum)
    step = max(1, (1 << (n.bit_length() - 1)) // 4)
    return -(-n // step) * step


@dataclasses.dataclass(frozen=True)
class GenerationOutput:
    """New token ids per prompt (without the stop token), why each row ended, and the
    stop token each row produced (``None`` for a row that reached the budget)."""

    tokens: list[list[int]]
    stop_reasons: list[str]
    stop_tokens: list[int | None] = dataclasses.field(default_factory=list)


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
    *,
    num_new: int,
    greedy: bool,
    top_k: int | None,
    use_top_p: bool,
    pad_id: int,
    rows: NamedSharding | None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
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
    done = ~active | jnp.isin(first, stops)
    out = jnp.full((batch, num_new), pad_id, jnp.int32).at[:, 0].set(first)
    lengths = jnp.where(done, 0, 1).astype(jnp.int32)
    stopped = active & jnp.isin(first, stops)

    def keep_going(carry: _Carry) -> jax.Array:
        step, _, _, done, *_ = carry
        return (step < max_new_tokens) & ~jnp.all(done)

    def decode_one(carry: _Carry) -> _Carry:
        step, cache, out, done, lengths, stopped, key = carry
        previous = out[:, step - 1]
        slot = prompt_len + step - 1
        step_mask = (real_key & (slots[None, :] <= slot))[:, None, :]
        step_positions = (slot - pad_lengths)[:, None]
        logits, cache = model(previous[:, None], step_positions, step_mask, cache)
        key, step_key = jax.random.split(key)
        token = sample(logits[:, 0], step_key, temperature, top_p)
        is_stop = jnp.isin(token, stops)
        out = out.at[:, step].set(jnp.where(done, pad_id, token))
        lengths = lengths + (~done & ~is_stop)
        stopped = stopped | (~done & is_stop)
        carry = (step + 1, cache, out, done | is_stop, lengths, stopped, key)
        return _split_rows(carry, rows)

    carry = _split_rows((jnp.int32(1), cache, out, done, lengths, stopped, key), rows)
    _, _, out, _, lengths, stopped, _ = jax.lax.while_loop(keep_going, decode_one, carry)
    return out, lengths, stopped


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
        static = ("num_new", "greedy", "top_k", "use_top_p", "pad_id")
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
    ) -> list[str]:
        """Completions (without the prompt and the stop token), one per prompt."""
        ids = [self.tokenizer.encode(prompt, add_bos=True) for prompt in prompts]
        result = self.generate_ids(
            ids,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
        )
        return [self.tokenizer.decode(tokens) for tokens in result.tokens]

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
    ) -> GenerationOutput:
        """New token ids and stop reasons ("stop" or "length") for already tokenized prompts.

        temperature 0 is greedy decoding. stop_ids defaults to the tokenizer's `<eos>` and
        `<end_of_turn>`; pass () to always generate max_new_tokens tokens.
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
        if not prompt_ids:
            return GenerationOutput([], [])
        if any(len(ids) == 0 for ids in prompt_ids):
            raise ValueError("every prompt needs at least one token")

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
        out, lengths, stopped = self._compiled(
            state,
            *by_row,
            jnp.int32(max_new_tokens),
            jax.random.key(seed),
            jnp.float32(max(temperature, 1e-6)),
            jnp.float32(1.0 if top_p is None else top_p),
            jnp.asarray(stops, jnp.int32),
            num_new=num_new,
            greedy=temperature == 0.0,
            top_k=top_k,
            use_top_p=top_p is not None and top_p < 1.0,
            pad_id=pad_id,
        )
        out, lengths, stopped = jax.device_get((out, lengths, stopped))
        return GenerationOutput(
            tokens=[out[row, : lengths[row]].tolist() for row in range(num_rows)],
            stop_reasons=[STOP if stopped[row] else LENGTH for row in range(num_rows)],
            # A stopped row's stop token sits right after its last kept token.
            stop_tokens=[
                int(out[row, lengths[row]]) if stopped[row] else None for row in range(num_rows)
            ],
        )

    def stream(self, prompt: str, *, max_new_tokens: int) -> Iterator[str]:
        """The greedy completion of ``prompt`` as text pieces, each handed out as soon as
        it is decoded; joined, they equal ``generate([prompt], ...)[0]``."""
        ids = self.tokenizer.encode(prompt, add_bos=True)
        return text_deltas(self.tokenizer, self.stream_ids(ids, max_new_tokens=max_new_tokens))

    def stream_ids(
        self,
        prompt_ids: Sequence[int],
        *,
        max_new_tokens: int,
        stop_ids: Sequence[int] | None = None,
    ) -> Iterator[int]:
        """The new token ids of one prompt, greedy, each yielded as soon as it is decoded,
        until a stop token (not yielded; ``stop_ids`` as in `generate_ids`) or
        ``max_new_tokens``: the tokens `generate_ids` returns for that prompt at
        temperature 0. Decoding runs only while the iterator is consumed, so closing it
        (or interrupting the loop that reads it) stops the generation. Single-process
        meshes only: every step reads its token back to the host."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if not prompt_ids:
            raise ValueError("the prompt needs at least one token")
        stops = set(self.tokenizer.stop_ids if stop_ids is None else stop_ids)
        # The batch and cache shapes of `generate_ids` for one prompt, so the numbers match.
        batch = self.batch_size(1)
        prompt_len = bucket(len(prompt_ids), _MIN_PROMPT_BUCKET)
        cache_len = prompt_len + bucket(max_new_tokens, _MIN_NEW_TOKENS_BUCKET)
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
