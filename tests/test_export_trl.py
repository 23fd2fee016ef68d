"""The exported DPO file is accepted as is by TRL: DPOTrainer tokenizes it and trains a step.

TRL, datasets and torch are test dependencies (scripts/setup.sh installs them): a missing one fails
this file at import, it is never skipped. No model is downloaded: a 1-layer GPT-2 with a word-level
tokenizer built from the exported texts.
"""

from __future__ import annotations

import copy
import json

import datasets
import trl
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
from trl.data_utils import is_conversational, maybe_extract_prompt, unpair_preference_dataset

from _ensemble_helpers import make_store
from referee.export import Filters, dpo_rows, load_preferences, write_rows


def _export(tmp_path, suffix, chat=False):
    store = tmp_path / "run" / "verdicts.sqlite"
    make_store(store, n_prompts=8)
    prefs = load_preferences(store.parent)
    rows, _ = dpo_rows(prefs.records, prefs.prompts, prefs.outputs, Filters(min_agreement=0.5), chat=chat)
    assert len(rows) >= 8
    return write_rows(tmp_path / f"dpo{suffix}", rows)


def _tiny_tokenizer(ds):
    words = {w for r in ds for k in ("prompt", "chosen", "rejected") for w in r[k].split()}
    vocab = {w: i for i, w in enumerate(["<unk>", "<pad>", "<eos>", *sorted(words)])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>")


def test_trl_dpo_trainer_accepts_the_exported_jsonl(tmp_path):
    path = _export(tmp_path, ".jsonl")
    ds = datasets.load_dataset("json", data_files=str(path), split="train")
    assert not is_conversational(ds[0])
    tok = _tiny_tokenizer(ds)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=16, n_layer=1, n_head=2, n_positions=256))
    args = trl.DPOConfig(output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=2, report_to=[],
                         use_cpu=True, save_strategy="no", logging_steps=1, seed=0)
    trainer = trl.DPOTrainer(model=model, ref_model=copy.deepcopy(model), args=args, train_dataset=ds,
                             processing_class=tok)
    assert {"prompt_ids", "chosen_ids", "rejected_ids"} <= set(trainer.train_dataset.column_names)
    out = trainer.train()
    assert out.global_step == 1 and out.training_loss > 0


def test_trl_data_utils_on_parquet_and_chat_exports(tmp_path):
    pq_path = _export(tmp_path, ".parquet")
    ds = datasets.load_dataset("parquet", data_files=str(pq_path), split="train")
    kto = unpair_preference_dataset(ds.select_columns(["prompt", "chosen", "rejected"]))
    assert set(kto.column_names) == {"prompt", "completion", "label"} and len(kto) == 2 * len(ds)
    chat = _export(tmp_path / "c", ".jsonl", chat=True) if (tmp_path / "c").mkdir() is None else None
    row = json.loads(chat.read_text().splitlines()[0])
    assert is_conversational(row)
    assert maybe_extract_prompt(row)["prompt"] == row["prompt"]
