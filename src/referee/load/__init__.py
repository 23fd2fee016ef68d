"""Load stage: candidates from JSONL, JSON, CSV, Parquet or a folder of per-system files."""

from ._candidates import FIELD_ALIASES, Candidate, CandidateSet, Prompt, load_candidates, load_prompts

__all__ = ["FIELD_ALIASES", "Candidate", "CandidateSet", "Prompt", "load_candidates", "load_prompts"]
