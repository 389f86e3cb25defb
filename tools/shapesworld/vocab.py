"""The pack's SentencePiece vocabulary: trained on the generated texts, with the settings that
make llama.cpp's SPM tokenizer (and omnid's, tests/llm) produce the same ids as the
sentencepiece library (BPE, byte fallback, no normalisation, whitespace kept as is, a
dummy-prefix space), plus the four image signal tokens as user-defined pieces. Also writes
the tokenizer.ggml.* keys the way llama.cpp's converter does.

Prompts are tokenised here exactly as omnid's llm stage does: the rendered chat text is split
at the media placeholder, the part before gets BOS, each part gets SentencePiece's space
prefix, and the video rows go between them (daemon/stage_llm.c tokenize()).
"""
import io
import os
import sys

import numpy as np
import sentencepiece as spm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from gguf_py import ARR, BOOL, F32T, I32, STR, U32  # noqa: E402

SIGNALS = ['[IMG0]', '[IMG1]', '[IMG2]', '[IMG3]']
VOCAB_SIZE = 640
BOS, EOS = 1, 2
# A llama-2 template: omnid (and llama.cpp) recognise the format from the [INST] markers.
CHAT_TEMPLATE = ("{% for message in messages %}{% if message['role'] == 'user' %}"
                 "{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}"
                 "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
                 "{% endif %}{% endfor %}")


def train(texts, out_prefix):
    """Trains the model on texts (deterministic: one thread); writes out_prefix.model."""
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=buf, model_type='bpe', vocab_size=VOCAB_SIZE,
        character_coverage=1.0, byte_fallback=True, split_digits=True, normalization_rule_name='identity',
        remove_extra_whitespaces=False, add_dummy_prefix=True, allow_whitespace_only_pieces=True,
        user_defined_symbols=SIGNALS, unk_id=0, bos_id=BOS, eos_id=EOS, pad_id=-1, hard_vocab_limit=False,
        num_threads=1, minloglevel=2, input_sentence_size=len(texts))
    with open(out_prefix + '.model', 'wb') as f:
        f.write(buf.getvalue())
    return load(out_prefix + '.model')


def load(path):
    return spm.SentencePieceProcessor(model_file=path)


def signal_ids(sp):
    return [sp.piece_to_id(s) for s in SIGNALS]


def encode(sp, text):
    return sp.encode(text) if text else []


def prompt_ids(sp, user, n_rows=0, placeholder='<video>'):
    """The ids omnid feeds for one user turn in llama-2 format; -1 marks a video row."""
    if n_rows and placeholder not in user:
        user = placeholder + '\n' + user
    text = '[INST] ' + user + ' [/INST]'
    if not n_rows:
        return [BOS] + encode(sp, text)
    a, b = text.split(placeholder, 1)
    return [BOS] + encode(sp, a) + [-1] * n_rows + encode(sp, b)


def answer_ids(sp, answer):
    """What the assistant turn continues with: the answer's pieces, then EOS."""
    return encode(sp, answer) + [EOS]


def gguf_keys(w, sp):
    """tokenizer.ggml.* as llama.cpp's convert_hf_to_gguf.py writes them for a SentencePiece model."""
    n = sp.get_piece_size()
    tokens, scores, types = [], [], []
    for i in range(n):
        tokens.append(sp.id_to_piece(i))
        scores.append(float(sp.get_score(i)))
        if sp.is_unknown(i):
            types.append(2)
        elif sp.is_control(i):
            types.append(3)
        elif sp.is_byte(i):
            types.append(6)
        elif tokens[-1] in SIGNALS:
            types.append(4)
        else:
            types.append(1)
    w.add('tokenizer.ggml.model', STR, 'llama')
    w.add('tokenizer.ggml.pre', STR, 'default')
    w.add('tokenizer.ggml.tokens', ARR, tokens, STR)
    w.add('tokenizer.ggml.scores', ARR, np.array(scores, dtype=np.float32).tolist(), F32T)
    w.add('tokenizer.ggml.token_type', ARR, types, I32)
    w.add('tokenizer.ggml.bos_token_id', U32, BOS)
    w.add('tokenizer.ggml.eos_token_id', U32, EOS)
    w.add('tokenizer.ggml.unknown_token_id', U32, 0)
    w.add('tokenizer.ggml.add_bos_token', BOOL, True)
    w.add('tokenizer.ggml.add_eos_token', BOOL, False)
    w.add('tokenizer.chat_template', STR, CHAT_TEMPLATE)
    return n
