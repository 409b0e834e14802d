"""The Qwen3-Reranker model-card Transformers procedure, written out literally as the yardstick.

Independent of `models/` on purpose: the backend is tested against this, so it must not share
code with it. Deliberate differences from the card: the model is pinned to float32 (the card
relies on the library default, which is float32 in transformers 4 but "auto" in 5) and runs on
CPU; loaded models are cached per directory.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Optional

PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and "
    'the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"

Triple = tuple[Optional[str], str, str]


@lru_cache(maxsize=4)
def _load(model_dir: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    return tokenizer, model


def format_instruction(instruction, query, doc):
    if instruction is None:
        instruction = "Given a web search query, retrieve relevant passages that answer the query"
    output = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}".format(
        instruction=instruction, query=query, doc=doc
    )
    return output


def _process_inputs(tokenizer, model, pairs, max_length):
    prefix_tokens = tokenizer.encode(PREFIX, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(SUFFIX, add_special_tokens=False)
    inputs = tokenizer(
        pairs, padding=False, truncation="longest_first", return_attention_mask=False,
        max_length=max_length - len(prefix_tokens) - len(suffix_tokens),
    )
    for i, ele in enumerate(inputs["input_ids"]):
        inputs["input_ids"][i] = prefix_tokens + ele + suffix_tokens
    with warnings.catch_warnings():  # the card's max_length is ignored under padding=True, and HF says so
        warnings.simplefilter("ignore", UserWarning)
        inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=max_length)
    for key in inputs:
        inputs[key] = inputs[key].to(model.device)
    return inputs


def _compute_logits(tokenizer, model, inputs):
    import torch

    token_false_id = tokenizer.convert_tokens_to_ids("no")
    token_true_id = tokenizer.convert_tokens_to_ids("yes")
    with torch.no_grad():
        batch_scores = model(**inputs).logits[:, -1, :]
        true_vector = batch_scores[:, token_true_id]
        false_vector = batch_scores[:, token_false_id]
        batch_scores = torch.stack([false_vector, true_vector], dim=1)
        batch_scores = torch.nn.functional.log_softmax(batch_scores, dim=1)
        scores = batch_scores[:, 1].exp().tolist()
    return scores


def reference_scores(
    model_dir, pairs: list[Triple], max_length: int = 8192, batch: bool = True,
    prompt_format=format_instruction,
) -> list[float]:
    """P(yes) for (instruction or None, query, document) triples, as the model card computes it.

    `batch=False` scores each pair alone. `prompt_format` lets a test swap in a wrong template
    to prove the comparison is sensitive to it."""
    tokenizer, model = _load(str(model_dir))
    texts = [prompt_format(instruction, query, doc) for instruction, query, doc in pairs]
    groups = [texts] if batch else [[text] for text in texts]
    scores: list[float] = []
    for group in groups:
        inputs = _process_inputs(tokenizer, model, group, max_length)
        scores += _compute_logits(tokenizer, model, inputs)
    return scores
