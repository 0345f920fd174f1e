"""A RoBERTa-style byte-level BPE tokenizer trained on the fly, for the offline world.

LAION-CLAP's text tower is RoBERTa with its byte-level BPE; offline we cannot download it, so we train
the same kind of tokenizer on our own captions. Byte-level BPE never needs an unknown token: any
string encodes, and decoding gives it back.
"""
from __future__ import annotations

from collections.abc import Iterable

from tokenizers import ByteLevelBPETokenizer
from transformers import RobertaTokenizerFast

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa's ids 0..4 (pad = 1)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1000, max_length: int = 64) -> RobertaTokenizerFast:
    """Train a byte-level BPE on `texts` and wrap it as a `RobertaTokenizerFast`.

    Args:
        texts: training captions.
        vocab_size: target vocabulary size (the 256 byte symbols and the special tokens included).
        max_length: `model_max_length` of the tokenizer (tokens, with <s> and </s>).
    """
    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(list(texts), vocab_size=vocab_size, min_frequency=1, special_tokens=SPECIAL_TOKENS,
                            show_progress=False)
    return RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, model_max_length=max_length,
                                bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
                                unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
