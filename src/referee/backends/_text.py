"""Untrusted text on its way to a server whose tokenizer we do not run."""

from __future__ import annotations

import re

# The spellings of chat control tokens in the families a server is likely to run: <|im_end|>,
# <|eot_id|>, <|endoftext|> (ChatML, Llama 3, GPT, Phi), DeepSeek's full-width bars, <s>/</s>,
# Gemma's turn markers, <bos>/<eos>/<pad>, and Mistral/Llama 2's [INST] blocks.
_CONTROL = re.compile(
    r"<\|[^|<>\s]{1,64}\|>|<\uff5c[^\uff5c<>\s]{1,64}\uff5c>|</?s>|<(?:start|end)_of_turn>|<(?:bos|eos|pad)>"
    r"|\[/?INST\]|<<(?:/)?SYS>>")
_JOINER = "\u2060"  # WORD JOINER: invisible, and no tokenizer's special token spans it

CONTROL_TOKENS_POLICY = "word-joiner-v1"


def inert_control_tokens(text: str) -> str:
    """``text`` with every spelling of a chat control token broken by a word joiner after its first
    character, so that a server that parses special tokens in prompts reads it as plain text."""
    return _CONTROL.sub(lambda m: m.group(0)[0] + _JOINER + m.group(0)[1:], text)
