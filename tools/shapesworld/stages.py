"""Training stages of the vision-language side (BLIP-2's recipe, scaled down):

1. clip:  the ViT on single frames, first alone with supervised targets (which object covers
          each patch, where each patch is, which objects the clip holds), then with the CLIP
          text tower, contrastive against the frames' captions, the supervised terms kept.
2. cache: the frozen ViT's features of every training frame, computed once.
3. video: on the cached features, the Q-Former, video Q-Former, video head, llama_proj and the
          LLM together: contrastive video<->caption (the text tower keeps training, and
          frame<->caption keeps the image projection aligned with it), a scene head on the video
          tokens (which objects are there and how each moves; not exported) and next-token
          loss on answers, captions and image requests.
4. qa:    the LLM and llama_proj alone on the frozen video tokens, with the same language
          targets.

Each stage checkpoints every CKPT_EVERY steps and resumes from its checkpoint.
"""
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
from schedule import lr_at

CKPT_EVERY = 200
TEXT_LEN = models.TEXT['max_position_embeddings']
DENSE_OBJECT_WEIGHT = 5.0       # object cells are ~10% of a frame's cells
SUP_LR = 2e-3
CLIP_VIT_LR = 3e-4


def log(msg):
    print('[%s] %s' % (time.strftime('%H:%M:%S'), msg), flush=True)


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
    """Frames of (clip, k) pairs -> pixels, caption texts, dense labels [B, 8, 8] and
    presence labels [B, 30] (which (colour, shape) pairs the clip shows)."""
    px = torch.from_numpy(np.stack([frames[i, k] for i, k in idx]))
    caps, labels = [], []
    present = torch.zeros(len(idx), models.N_CLASSES - 1)
    for b, (i, k) in enumerate(idx):
        c, lab = data.frame_texts(clips[i], k)
        caps.append(c)
        labels.append(lab)
        for o in clips[i]['scene']['objects']:
            present[b, world.label_of(o['shape'], o['colour']) - 1] = 1
    return models.normalize_pixels(px), caps, torch.from_numpy(np.stack(labels)), present


def supervised_loss(w, pooled, last, labels, present):
    """What and where, for the ViT: the dense colour x shape class of each patch (object cells
    weighted DENSE_OBJECT_WEIGHT against the background that covers most cells), the clip's
    (colour, shape) set read from the pooled token, and each patch's own row and column.

    The last term is there because the Q-Former pools patches by attention: without it the
    patch tokens kept no trace of where they sit (a linear probe on an object's patches read
    its x, y no better than the mean), so no motion could be read from the frames."""
    B, P, _ = last[:, 1:].shape
    dense = F.linear(last[:, 1:], w['dense_head.weight'], w['dense_head.bias']).reshape(-1, models.N_CLASSES)
    lab = labels.reshape(-1)
    wt = torch.where(lab > 0, DENSE_OBJECT_WEIGHT, 1.0)
    l_dense = (F.cross_entropy(dense, lab, reduction='none') * wt).sum() / wt.sum()
    l_present = F.binary_cross_entropy_with_logits(
        F.linear(pooled, w['presence_head.weight'], w['presence_head.bias']), present)
    g = models.GRID
    pos = F.linear(last[:, 1:], w['position_head.weight'], w['position_head.bias']).reshape(B * P, 2, g)
    cell = torch.arange(P)
    l_pos = F.cross_entropy(pos.permute(0, 2, 1), torch.stack([cell // g, cell % g], 1).repeat(B, 1))
    return l_dense + l_present + l_pos


@torch.no_grad()
def shape_probe(w, frames, clips, n=3000):
    """Held-out accuracy of a linear probe reading the shape of single-object frames from
    the ViT's max-pooled patch tokens: what the frozen features offer the Q-Formers."""
    idx = [k for k, r in enumerate(clips) if len(r['scene']['objects']) == 1][:n]
    X = torch.cat([models.vit(w, models.normalize_pixels(torch.from_numpy(np.stack([frames[k, 0] for k in part]))))[1]
                   [:, 1:].max(1).values for part in (idx[lo:lo + 500] for lo in range(0, len(idx), 500))])
    y = torch.tensor([world.SHAPES.index(clips[k]['scene']['objects'][0]['shape']) for k in idx])
    cut = len(idx) * 4 // 5
    with torch.enable_grad():
        lin = torch.nn.Linear(X.shape[1], len(world.SHAPES))
        opt = torch.optim.Adam(lin.parameters(), 1e-2)
        for _ in range(300):
            opt.zero_grad()
            F.cross_entropy(lin(X[:cut]), y[:cut]).backward()
            opt.step()
    return float((lin(X[cut:]).argmax(1) == y[cut:]).float().mean())


def stage_clip(p, sp, frames, clips, sup_steps, sup_batch, steps, batch, ckpt_path, seed):
    """ViT + CLIP text tower in two phases. First the ViT alone learns, from dense and presence
    labels, which shapes and colours a frame holds: CLIP's InfoNCE alone taught it colour but
    barely shape within the budget (docs/DEMO.md). Then frame<->caption InfoNCE trains the text
    tower onto it, with the supervised terms kept and the ViT at a lower rate."""
    w = p.t
    vit_params, text_params = p.of('blip2', 'aux'), p.of('clip')
    opt = torch.optim.AdamW([{'params': vit_params}, {'params': text_params}], lr=1e-3, weight_decay=0.05)
    ck = Ckpt(ckpt_path, p, opt)
    start = ck.resume()
    rng = np.random.default_rng([seed, 1, start])
    n = len(clips)
    t0 = time.time()
    for step in range(start, sup_steps + steps):
        joint = step >= sup_steps
        if joint:
            lr = (lr_at(step - sup_steps, steps, CLIP_VIT_LR), lr_at(step - sup_steps, steps, 1e-3))
        else:
            lr = (lr_at(step, sup_steps, SUP_LR, warm=50), 0.0)
        for g, x in zip(opt.param_groups, lr):
            g['lr'] = x
        b = batch if joint else sup_batch
        idx = [(int(i), int(k)) for i, k in zip(rng.integers(n, size=b), rng.integers(8, size=b))]
        px, caps, labels, present = frame_batch(frames, clips, idx)
        pooled, last = models.vit(w, px)
        l_sup = supervised_loss(w, pooled, last, labels, present)
        l_clip = torch.zeros(())
        if joint:
            ids, eos = text_batch(sp, caps)
            _, txt = models.text_tower(w, ids, eos)
            l_clip = contrastive(models.image_embed(w, pooled), txt, caps, w['logit_scale'])
        loss = l_clip + l_sup
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vit_params + text_params, 1.0)
        opt.step()
        if step % 50 == 0 or step == sup_steps + steps - 1:
            log('clip %d/%d loss %.3f (contrastive %.3f supervised %.3f) %.2f s/step' %
                (step, sup_steps + steps, loss.item(), l_clip.item(), l_sup.item(),
                 (time.time() - t0) / (step - start + 1)))
        if step + 1 == sup_steps or step + 1 == sup_steps + steps:
            log('clip %d: shape probe %.3f' % (step + 1, shape_probe(w, frames, clips)))
        if (step + 1) % CKPT_EVERY == 0:
            ck.save(step + 1)
    ck.save(sup_steps + steps)


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


def lm_batch(sp, clips, t2i, vid, rng, n_qa):
    """The language targets of one step: n_qa questions (and sometimes the caption) of each clip
    in vid, as (prompt, answer, index in vid), then batch / 8 image requests without video."""
    seqs = []
    for j, i in enumerate(vid):
        seqs += [(a, b, j) for a, b in lm_examples(sp, clips[i], rng, n_qa)]
    for i in rng.integers(len(t2i), size=max(1, len(vid) // 8)):
        a, b = t2i_example(sp, t2i[i])
        seqs.append((a, b, -1))
    return seqs


def clip_feats(feats, vid):
    """Cached f16 ViT features of clips vid as float32 [len(vid), 8, tokens, D]."""
    return torch.from_numpy(np.stack([feats[i] for i in vid]).astype(np.float32))


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
        tokens = models.encode_video(w, clip_feats(feats, vid))
        caps = [world.caption(clips[i]['scene']) for i in vid]
        l_vid = contrastive(models.video_head(w, tokens), text_embed(w, sp, caps), caps, w['video_logit_scale'])
        # which objects the clip holds and how each moves, read from all video tokens: a dense
        # target that makes the Q-Formers keep what the questions ask about (dropped at export)
        scene = F.linear(tokens.flatten(1), w['scene_head.weight'], w['scene_head.bias'])
        l_scene = F.cross_entropy(scene.view(-1, models.N_SLOT),
                                  torch.from_numpy(np.stack([scene_labels(clips[i]) for i in vid])).view(-1))
        # frame <-> frame caption keeps the image projection on the moving text tower
        l_img = frame_contrastive(w, sp, pooled, clips, rng, batch)
        seqs = lm_batch(sp, clips, t2i, vid, rng, 3)
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


QA_LR = 5e-4


def stage_qa(p, sp, feats, clips, t2i, steps, batch, ckpt_path, seed):
    """The LLM and llama_proj alone, on video tokens of the frozen visual side, with the video
    stage's answers, captions and image requests (4 questions a clip instead of 3). Measured
    once from the video stage's end: 300 such steps took held-out presence answers from 0.53 to
    0.84 (chance 0.50), while the same steps with the video rows after the question (so the rows
    could attend to it) reached only 0.55; the joint stage, sharing its steps with contrastive
    and scene terms, had left presence at chance."""
    w = p.t
    pfeats, pqs = probe_set(w, seed)
    train = p.of('llm') + [w['llama_proj.weight'], w['llama_proj.bias']]
    for v in w.values():
        v.requires_grad_(False)
    for v in train:
        v.requires_grad_(True)
    opt = torch.optim.AdamW(train, lr=QA_LR, weight_decay=0.02)
    ck = Ckpt(ckpt_path, p, opt)
    start = ck.resume()
    rng = np.random.default_rng([seed, 4, start])
    n, t0 = len(clips), time.time()
    for step in range(start, steps):
        for g in opt.param_groups:
            g['lr'] = lr_at(step, steps, QA_LR, warm=20)
        vid = rng.integers(n, size=batch)
        with torch.no_grad():
            tokens = models.encode_video(w, clip_feats(feats, vid))
        seqs = lm_batch(sp, clips, t2i, vid, rng, 4)
        loss = lm_loss(w, seqs, F.linear(tokens, w['llama_proj.weight'], w['llama_proj.bias']))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(train, 1.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            log('qa %d/%d lm %.3f %.2f s/step' % (step, steps, loss.item(), (time.time() - t0) / (step - start + 1)))
        if (step + 1) % CKPT_EVERY == 0:
            ck.save(step + 1)
    acc, per = probe(w, sp, pfeats, pqs)
    log('qa %d probe: held-out answer accuracy %.3f %s' % (steps, acc, per))
    ck.save(steps)
