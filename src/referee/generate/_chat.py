"""A model behind the generation store, for stages that chat with it (critic, reviser, proposer, voter)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from .._version import __version__
from ..store import Generated, GenerationStore, generation_key


def data_block(tag: str, text: str) -> str:
    """``text`` inside ``<tag>`` … ``</tag>``; a forged closing tag inside the untrusted text is
    broken (``</ tag>``), so it cannot end the block it sits in."""
    return f"<{tag}>\n{text.replace(f'</{tag}>', f'</ {tag}>')}\n</{tag}>"


class StoredChat:
    """A model behind the store: a chat already answered is read back, a new one committed at once.

    Args:
        role: what the model does here (part of every key: a critic's and a voter's answers to
            the same messages are different generations).
        model: a :class:`~referee.generate.GeneratorModel` (or anything with its ``identity``,
            ``chunk`` and ``generate_many``).
        system: the system prompt.
        store: where the answers are kept.
        json_schema: constrain the answers to this schema (a grammar in llama.cpp).
    """

    def __init__(self, role: str, model: Any, system: str, store: GenerationStore, *, max_tokens: int,
                 temperature: float, seed: int, json_schema: dict[str, Any] | None = None,
                 top_p: float | None = None, stop: Sequence[str] = ()) -> None:
        self.role, self.model, self.system, self.store = role, model, system, store
        self.sampling: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature, "seed": seed}
        # only when set: the keys of chats stored before these options existed stay the same
        if top_p is not None:
            self.sampling["top_p"] = top_p
        if stop:
            self.sampling["stop"] = list(stop)
        self.json_schema = json_schema
        self.identity = {"role": role, "model": model.identity, "system_prompt": system, **self.sampling,
                         "json_schema": json_schema}
        self.asked = 0
        self.reused = 0

    def describe(self) -> dict[str, Any]:
        return {"model": self.model.identity, "system_prompt_sha256": hashlib.sha256(self.system.encode()).hexdigest(),
                **self.sampling, "structured": self.json_schema is not None}

    def ask_all(self, items: Sequence[tuple[str, list[dict[str, str]]]],
                samples: Sequence[int] | None = None) -> list[Generated | BaseException]:
        """``(label, messages)`` each: the stored answers, the rest asked (batched on HTTP servers);
        a failed call is its exception, in its place. ``samples`` numbers repeated draws of the same
        messages (sample ``k`` uses seed ``seed + k``); default: sample 0 each."""
        out: list[Generated | BaseException | None] = []
        todo = []
        for n, (label, msgs) in enumerate(items):
            k = 0 if samples is None else samples[n]
            seed = self.sampling["seed"] + k
            key = generation_key(self.identity, json.dumps(msgs, sort_keys=True), k, seed)
            got = self.store.get(key)
            if got is not None:
                self.reused += 1
            else:
                todo.append((len(out), label, key, msgs, k, seed))
            out.append(got)
        step = max(1, self.model.chunk)
        for s in range(0, len(todo), step):
            batch = todo[s:s + step]
            got = self.model.generate_many([{"messages": m, **self.sampling, "seed": seed, "json_schema": self.json_schema}
                                            for _, _, _, m, _, seed in batch])
            for (i, label, key, _, k, seed), g in zip(batch, got):
                if isinstance(g, BaseException):
                    out[i] = g
                    continue
                rec = Generated(key=key, system=self.role, prompt_id=label, sample=k, seed=seed, text=g.text,
                                prompt_tokens=g.prompt_tokens, completion_tokens=g.completion_tokens,
                                finish_reason=g.finish_reason, latency_s=round(g.latency_s, 4),
                                provenance={"referee_version": __version__, **self.describe()})
                self.store.put(rec)  # committed before the next call: kill -9 loses the call in flight
                self.asked += 1
                out[i] = rec
        return out  # type: ignore[return-value]
