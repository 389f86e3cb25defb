"""Inference with the trained PyTorch models, as omnid runs them: video tokens from ViT
features, the llama-2 prompt with the video rows at the placeholder, greedy decoding to EOS.
Used by the training probe and by eval.py (the reference omnid's answers are compared with)."""
import numpy as np
import torch
import torch.nn.functional as F

import models
import vocab


@torch.no_grad()
def video_rows(w, feats):
    """ViT features [B, 8, tokens, D] -> (video tokens [B, nq, D], LLM rows [B, nq, E])."""
    tok = models.encode_video(w, feats)
    return tok, F.linear(tok, w['llama_proj.weight'], w['llama_proj.bias'])


def av_rows(w, medium, emb):
    """Joint-space embeddings [B, JOINT] of sounds or IMU traces -> LLM rows [B, AV_ROWS, E]
    (the medium's NExT-GPT-style input projection)."""
    x = F.linear(emb, w[medium + '_llama_proj.weight'], w[medium + '_llama_proj.bias'])
    return x.view(emb.shape[0], models.AV_ROWS, x.shape[-1] // models.AV_ROWS)


@torch.no_grad()
def vit_features(w, frames_u8):
    """uint8 [B, 8, S, S, 3] -> post-LN ViT tokens [B, 8, tokens, D]."""
    B = frames_u8.shape[0]
    px = models.normalize_pixels(torch.from_numpy(np.ascontiguousarray(frames_u8.reshape(-1, *frames_u8.shape[2:]))))
    _, last = models.vit(w, px)
    return last.view(B, 8, *last.shape[1:])


@torch.no_grad()
def generate(w, sp, prompt, rows=None, max_new=40):
    """Greedy continuation of prompt ids (-1 = the next row of rows [nq, E]); returns the new ids
    without the EOS."""
    ids = list(prompt)
    out = []
    for _ in range(max_new):
        x = torch.tensor([ids])
        emb = models.embed_tokens(w, x).clone()
        pos = [i for i, t in enumerate(ids) if t < 0]
        if pos:
            emb[0, pos[0]:pos[-1] + 1] = rows
        nxt = int(models.llm_forward(w, emb)[0, -1].argmax())
        if nxt == vocab.EOS:
            break
        out.append(nxt)
        ids.append(nxt)
    return out


def ask(w, sp, question, rows, placeholder='<video>', max_new=12):
    return sp.decode(generate(w, sp, vocab.prompt_ids(sp, question, rows.shape[0], placeholder), rows, max_new)).strip()
