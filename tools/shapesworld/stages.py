"""Training stages of the vision-language side (BLIP-2's recipe, scaled down):

1. clip:  the ViT and the CLIP text tower, contrastive on single frames and their captions,
          plus a dense per-patch head (which object covers each patch) so the frozen features
          keep positions, which motion questions need later.
2. cache: the frozen ViT's features of every training frame, computed once.
3. video: on the cached features, the Q-Former, video Q-Former, video head, llama_proj and the
          LLM together: contrastive video<->caption (the text tower keeps training, and
          frame<->caption keeps the image projection aligned with it), a scene head on the video
          tokens (which objects are there and how each moves; not exported) and next-token
          loss on answers, captions and image requests.

Each stage checkpoints every CKPT_EVERY steps and resumes from its checkpoint.
"""
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import data
import infer
import models
import vocab
import world

CKPT_EVERY = 200
TEXT_LEN = models.TEXT['max_position_embeddings']


def log(msg):
    print('[%s] %s' % (time.strftime('%H:%M:%S'), msg), flush=True)


def lr_at(step, total, peak, warm=100):
    if step < warm:
        return peak * (step + 1) / warm
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


def text_batch(sp, texts, length=None):
    """Token ids [B, L] (BOS + pieces + EOS, padded with 0 after the EOS, which the causal mask
    keeps from mattering) and each row's EOS position. L is the longest row (at most
    TEXT_LEN), or length when given (pieces cut to fit)."""
    L = length or TEXT_LEN
    rows = [[vocab.BOS] + vocab.encode(sp, t)[:L - 2] + [vocab.EOS] for t in texts]
    ids = np.zeros((len(texts), length or max(len(x) for x in rows)), np.int64)
    for i, x in enumerate(rows):
        ids[i, :len(x)] = x
    return torch.from_numpy(ids), torch.from_numpy(np.array([len(x) - 1 for x in rows]))


def text_embed(w, sp, texts):
    """The text tower's L2-normalised joint-space embeddings [B, JOINT] of texts."""
    ids, eos = text_batch(sp, texts)
    return models.text_tower(w, ids, eos)[1]


def frame_contrastive(w, sp, pooled, clips, rng, batch):
    """InfoNCE between random cached frames' image embeddings and their frame captions."""
    n = len(clips)
    fidx = [(int(i), int(k)) for i, k in zip(rng.integers(n, size=batch), rng.integers(8, size=batch))]
    fcaps = [data.frame_texts(clips[i], k)[0] for i, k in fidx]
    img = models.image_embed(w, torch.from_numpy(np.stack([pooled[i, k] for i, k in fidx])))
    return contrastive(img, text_embed(w, sp, fcaps), fcaps, w['logit_scale'])


def contrastive(a, b, keys, scale):
    """Symmetric InfoNCE between a [B, E] and b [B, E]; rows with equal keys are all positives."""
    k = np.asarray([hash(x) for x in keys])
    pos = torch.from_numpy((k[:, None] == k[None, :]).astype(np.float32))
    target = pos / pos.sum(1, keepdim=True)
    logits = scale.exp().clamp(max=100) * a @ b.T
    return 0.5 * (-(target * F.log_softmax(logits, 1)).sum(1).mean() - (target * F.log_softmax(logits.T, 1)).sum(1).mean())


class Ckpt:
    """One stage's resumable state: the parameters, the optimizer and the step."""

    def __init__(self, path, p, opt):
        self.path, self.p, self.opt = path, p, opt

    def resume(self):
        if not os.path.exists(self.path):
            return 0
        s = torch.load(self.path)
        self.p.load(s['params'])
        self.opt.load_state_dict(s['opt'])
        torch.set_rng_state(s['rng'])
        log('resumed %s at step %d' % (self.path, s['step']))
        return s['step']

    def save(self, step):
        tmp = self.path + '.tmp'
        torch.save({'params': {k: v.detach() for k, v in self.p.t.items()}, 'opt': self.opt.state_dict(),
                    'step': step, 'rng': torch.get_rng_state()}, tmp)
        os.replace(tmp, self.path)


def frame_batch(frames, clips, idx):
    """Frames of (clip, k) pairs -> pixels, caption texts, dense labels [B, 8, 8]."""
    px = torch.from_numpy(np.stack([frames[i, k] for i, k in idx]))
    caps, labels = [], []
    for i, k in idx:
        c, lab = data.frame_texts(clips[i], k)
        caps.append(c)
        labels.append(lab)
    return models.normalize_pixels(px), caps, torch.from_numpy(np.stack(labels))


def stage_clip(p, sp, frames, clips, steps, batch, ckpt_path, seed):
    w = p.t
    opt = torch.optim.AdamW(p.of('blip2', 'clip', 'aux'), lr=1e-3, weight_decay=0.05)
    ck = Ckpt(ckpt_path, p, opt)
    start = ck.resume()
    rng = np.random.default_rng([seed, 1, start])
    n = len(clips)
    t0 = time.time()
    for step in range(start, steps):
        for g in opt.param_groups:
            g['lr'] = lr_at(step, steps, 1e-3)
        idx = [(int(i), int(k)) for i, k in zip(rng.integers(n, size=batch), rng.integers(8, size=batch))]
        px, caps, labels = frame_batch(frames, clips, idx)
        pooled, last = models.vit(w, px)
        img = models.image_embed(w, pooled)
        ids, eos = text_batch(sp, caps)
        _, txt = models.text_tower(w, ids, eos)
        l_clip = contrastive(img, txt, caps, w['logit_scale'])
        dense = F.linear(last[:, 1:], w['dense_head.weight'], w['dense_head.bias'])
        l_dense = F.cross_entropy(dense.reshape(-1, models.N_CLASSES), labels.reshape(-1))
        loss = l_clip + l_dense
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(p.of('blip2', 'clip', 'aux'), 1.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            log('clip %d/%d loss %.3f (contrastive %.3f dense %.3f) %.2f s/step' %
                (step, steps, loss.item(), l_clip.item(), l_dense.item(), (time.time() - t0) / (step - start + 1)))
        if (step + 1) % CKPT_EVERY == 0:
            ck.save(step + 1)
    ck.save(steps)


@torch.no_grad()
def stage_cache(p, frames, out_dir, batch=256):
    """post-LN ViT tokens (f16) [N, 8, tokens, D] and pooled [N, 8, D] of every frame."""
    w = p.t
    N = frames.shape[0]
    tok = (models.VIT['image_size'] // models.VIT['patch_size']) ** 2 + 1
    D = models.VIT['hidden_size']
    feats = np.lib.format.open_memmap(os.path.join(out_dir, 'feats.npy.tmp'), 'w+', np.float16, (N, 8, tok, D))
    pooled = np.zeros((N, 8, D), np.float32)
    flat = frames.reshape(N * 8, *frames.shape[2:])
    t0 = time.time()
    for lo in range(0, N * 8, batch):
        hi = min(N * 8, lo + batch)
        pl, last = models.vit(w, models.normalize_pixels(torch.from_numpy(np.array(flat[lo:hi]))))
        feats.reshape(N * 8, tok, D)[lo:hi] = last.numpy().astype(np.float16)
        pooled.reshape(N * 8, D)[lo:hi] = pl.numpy()
        if lo % (batch * 40) == 0:
            log('cache %d/%d frames %.1f frames/s' % (hi, N * 8, hi / (time.time() - t0)))
    feats.flush()
    del feats
    os.replace(os.path.join(out_dir, 'feats.npy.tmp'), os.path.join(out_dir, 'feats.npy'))
    np.save(os.path.join(out_dir, 'pooled.npy'), pooled)


# ---------------------------------------------------------------- stage 3: video + LLM

DESCRIBE = ['Describe the video.', 'What happens in the video?', 'Describe what you see.']


def scene_labels(rec):
    """Per (colour, shape) pair, in dense-label order: its motion's index, or 7 when absent."""
    lab = np.full(models.N_CLASSES - 1, len(world.MOTIONS), np.int64)
    for o in rec['scene']['objects']:
        lab[world.label_of(o['shape'], o['colour']) - 1] = world.MOTIONS.index(o['motion'])
    return lab


def lm_examples(sp, rec, rng, n_qa):
    """(ids with -1 for the video rows, answer start) for n_qa questions and sometimes a caption."""
    out = []
    qs = world.questions(rec['scene'], rng)
    for j in rng.permutation(len(qs))[:n_qa]:
        q = qs[j]
        out.append((vocab.prompt_ids(sp, q['q'], models.VQF['n_query']), vocab.answer_ids(sp, q['a'])))
    if rng.random() < 0.5:
        out.append((vocab.prompt_ids(sp, DESCRIBE[int(rng.integers(len(DESCRIBE)))], models.VQF['n_query']),
                    vocab.answer_ids(sp, world.caption(rec['scene']))))
    return out


def t2i_example(sp, rec):
    return vocab.prompt_ids(sp, rec['prompt']), vocab.signal_ids(sp) + [vocab.EOS]


def lm_loss(w, seqs, rows_of):
    """Next-token loss on the answers of seqs = [(prompt ids, answer ids, video index or -1)];
    rows_of [n_videos, n_query, E] fills the -1 positions."""
    L = max(len(a) + len(b) for a, b, _ in seqs)
    B = len(seqs)
    ids = torch.zeros((B, L), dtype=torch.long)
    tgt = torch.full((B, L), -100, dtype=torch.long)
    for r, (a, b, _) in enumerate(seqs):
        x = a + b
        ids[r, :len(x)] = torch.tensor(x)
        tgt[r, len(a) - 1:len(x) - 1] = torch.tensor(b)
    # one gather + where instead of a slice assignment per sequence: autograd would copy the
    # whole embedding gradient once per assignment
    nq = rows_of.shape[1]
    src = torch.zeros((B, L), dtype=torch.long)
    for r, (a, _, v) in enumerate(seqs):
        if v >= 0:
            at = a.index(-1)
            src[r, at:at + nq] = v * nq + torch.arange(nq)
    emb = torch.where((ids < 0)[..., None], rows_of.reshape(-1, rows_of.shape[-1])[src], models.embed_tokens(w, ids))
    logits = models.llm_forward(w, emb)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100)


def probe_set(w, seed, n=64):
    """Held-out clips (never trained on) with one question each, and their ViT features."""
    frames, recs = data.render_chunk((0, n, seed), 'heldout')
    rng = np.random.default_rng([seed, 99])
    qs = []
    for r in recs:
        q = world.questions(r['scene'], rng)
        qs.append(q[int(rng.integers(len(q)))])
    return infer.vit_features(w, frames), qs


def probe(w, sp, feats, qs):
    """Greedy answer accuracy on the probe set, per question type."""
    _, rows = infer.video_rows(w, feats)
    hit = {}
    for i, q in enumerate(qs):
        hit.setdefault(q['type'], []).append(infer.ask(w, sp, q['q'], rows[i]) == q['a'])
    return np.mean([x for v in hit.values() for x in v]), {k: round(float(np.mean(v)), 2) for k, v in hit.items()}


def stage_video(p, sp, feats, pooled, clips, t2i, steps, batch, ckpt_path, seed):
    w = p.t
    pfeats, pqs = probe_set(w, seed)
    train = p.of('blip2', 'clip', 'video', 'head', 'llm', 'aux')
    frozen = [v for k, v in w.items() if k.startswith('vision_model.') or k.startswith('dense_head')]
    for v in frozen:
        v.requires_grad_(False)
    train = [v for v in train if v.requires_grad]
    opt = torch.optim.AdamW(train, lr=1e-3, weight_decay=0.02)
    ck = Ckpt(ckpt_path, p, opt)
    start = ck.resume()
    rng = np.random.default_rng([seed, 3, start])
    n, t0 = len(clips), time.time()
    for step in range(start, steps):
        for g in opt.param_groups:
            g['lr'] = lr_at(step, steps, 1e-3, warm=200)
        vid = rng.integers(n, size=batch)
        f = torch.from_numpy(np.stack([feats[i] for i in vid]).astype(np.float32))
        tokens = models.encode_video(w, f)
        caps = [world.caption(clips[i]['scene']) for i in vid]
        l_vid = contrastive(models.video_head(w, tokens), text_embed(w, sp, caps), caps, w['video_logit_scale'])
        # which objects the clip holds and how each moves, read from all video tokens: a dense
        # target that makes the Q-Formers keep what the questions ask about (dropped at export)
        scene = F.linear(tokens.flatten(1), w['scene_head.weight'], w['scene_head.bias'])
        l_scene = F.cross_entropy(scene.view(-1, models.N_SLOT),
                                  torch.from_numpy(np.stack([scene_labels(clips[i]) for i in vid])).view(-1))
        # frame <-> frame caption keeps the image projection on the moving text tower
        l_img = frame_contrastive(w, sp, pooled, clips, rng, batch)
        seqs = []
        for j, i in enumerate(vid):
            seqs += [(a, b, j) for a, b in lm_examples(sp, clips[i], rng, 3)]
        for i in rng.integers(len(t2i), size=max(1, batch // 8)):
            a, b = t2i_example(sp, t2i[i])
            seqs.append((a, b, -1))
        rows = F.linear(tokens, w['llama_proj.weight'], w['llama_proj.bias'])
        l_lm = lm_loss(w, seqs, rows)
        loss = l_lm + 0.5 * (l_vid + l_img) + l_scene
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(train, 1.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            log('video %d/%d loss %.3f (lm %.3f video %.3f frame %.3f scene %.3f) %.2f s/step' %
                (step, steps, loss.item(), l_lm.item(), l_vid.item(), l_img.item(), l_scene.item(),
                 (time.time() - t0) / (step - start + 1)))
        if (step + 1) % CKPT_EVERY == 0:
            ck.save(step + 1)
        if (step + 1) % 250 == 0 or step == steps - 1:
            acc, per = probe(w, sp, pfeats, pqs)
            log('video %d probe: held-out answer accuracy %.3f %s' % (step + 1, acc, per))
    ck.save(steps)
