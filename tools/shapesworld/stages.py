"""Training stages of the vision-language side (BLIP-2's and Video-LLaMA's recipes, scaled down):

1. clip:   the ViT on single frames, first alone with supervised targets (which object covers
           each patch, where each patch is, which objects the clip holds), then with the CLIP
           text tower, contrastive against the frames' captions, the supervised terms kept.
2. cache:  the frozen ViT's features of every training frame, computed once.
3. frames: the BLIP-2 Q-Former on single frames: from its query tokens, which objects the frame
           shows and where each is and how big; then its tokens of every training frame, cached.
4. video:  on the cached frame tokens (the frame encoder frozen, as Video-LLaMA trains), the
           video Q-Former and video head: contrastive video<->caption (the text tower keeps
           training, and frame<->caption keeps the image projection aligned with it) and a scene
           head on the video tokens (which objects are there and how each moves; not exported).
5. qa:     the LLM and llama_proj alone on the frozen video tokens: next-token loss on answers,
           captions and image requests, each step's sequences packed into trees (pack_tree).

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


def trainer(p, train, lr, ckpt_path):
    """A stage that trains only the tensors in train: (AdamW over them, its checkpoint, the step
    to start from)."""
    for v in p.t.values():
        v.requires_grad_(False)
    for v in train:
        v.requires_grad_(True)
    opt = torch.optim.AdamW(train, lr=lr, weight_decay=0.02)
    ck = Ckpt(ckpt_path, p, opt)
    return opt, ck, ck.resume()


def update(opt, loss, params):
    """One optimizer step on loss, the gradient of params clipped to norm 1."""
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()


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
        update(opt, loss, vit_params + text_params)
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


# ---------------------------------------------------------------- stage 3: the frame Q-Former

FRAME_LR = 3e-3
GEO_WEIGHT = 10.0               # squared errors of x, y, r (~0.03) against the presence BCE


def frame_targets(clips, pairs):
    """For sampled frames (clip, k): which (colour, shape) pairs each shows [B, 30] and each
    pair's centre x, y and radius as fractions of the canvas [B, 30, 3] (zero when absent)."""
    pres = np.zeros((len(pairs), models.N_CLASSES - 1), np.float32)
    geo = np.zeros((len(pairs), models.N_CLASSES - 1, 3), np.float32)
    for b, (i, k) in enumerate(pairs):
        scene = clips[i]['scene']
        t = world.sample_indices(scene['n_frames'])[k]
        for o in scene['objects']:
            c = world.label_of(o['shape'], o['colour']) - 1
            pres[b, c] = 1
            geo[b, c] = world.track(o, t / (scene['n_frames'] - 1))
    return torch.from_numpy(pres), torch.from_numpy(geo)


def frame_loss(w, fq, pres, geo):
    """What the video Q-Former will difference across frames, read from one frame's query
    tokens fq [B, N_QUERY, D]: each pair's presence, and its x, y, r where present.

    The last term pulls each query's mean token over the batch towards zero, so that what the
    tokens carry is what changes between frames (rescale_frame_tokens then scales it): without
    it they were a near-constant vector (mean square 0.13) plus content of variance 0.003."""
    h = F.linear(fq.flatten(1), w['frame_head.weight'], w['frame_head.bias']).view(len(fq), -1, 4)
    l_pres = F.binary_cross_entropy_with_logits(h[..., 0], pres)
    l_geo = GEO_WEIGHT * (((h[..., 1:] - geo) ** 2).sum(-1) * pres).sum() / pres.sum().clamp(min=1)
    l_centre = fq.mean(0).pow(2).sum(-1).mean() / fq.pow(2).sum(-1).mean()
    return l_pres, l_geo, l_centre


@torch.no_grad()
def frame_probe(w, seed, n=200):
    """On held-out frames: presence accuracy over all 30 pairs, mean |x, y| error of the pairs
    present, and the share of the tokens' variance that changes with the frame."""
    frames, recs = data.render_chunk((0, n, seed), 'heldout')
    pairs = [(i, k) for i in range(n) for k in range(8)]
    fq = models.qformer_frames(w, infer.vit_features(w, frames).flatten(0, 1))
    pres, geo = frame_targets(recs, pairs)
    h = F.linear(fq.flatten(1), w['frame_head.weight'], w['frame_head.bias']).view(len(fq), -1, 4)
    m = pres > 0
    return (float(((h[..., 0] > 0) == m).float().mean()), float((h[..., 1:3] - geo[..., :2]).abs()[m].mean()),
            float(fq.var(0).mean() / fq.flatten(0, 1).var(0).mean()))


def stage_frames(p, feats, clips, steps, batch, ckpt_path, seed):
    """The Q-Former alone on cached ViT features of single frames (frame_loss); the ViT frozen."""
    w = p.t
    train = [v for k, v in w.items() if k.startswith('qformer.') or k == 'query_tokens' or k.startswith('frame_head')]
    opt, ck, start = trainer(p, train, FRAME_LR, ckpt_path)
    rng = np.random.default_rng([seed, 2, start])
    t0 = time.time()
    for step in range(start, steps):
        for g in opt.param_groups:
            g['lr'] = lr_at(step, steps, FRAME_LR, warm=30)
        pairs = [(int(i), int(k)) for i, k in zip(rng.integers(len(clips), size=batch), rng.integers(8, size=batch))]
        fq = models.qformer_frames(w, torch.from_numpy(np.stack([feats[i, k] for i, k in pairs]).astype(np.float32)))
        l_pres, l_geo, l_centre = frame_loss(w, fq, *frame_targets(clips, pairs))
        loss = l_pres + l_geo + l_centre
        update(opt, loss, train)
        if step % 100 == 0 or step == steps - 1:
            log('frames %d/%d loss %.3f (presence %.3f where %.3f centre %.3f) %.2f s/step' %
                (step, steps, loss.item(), l_pres.item(), l_geo.item(), l_centre.item(),
                 (time.time() - t0) / (step - start + 1)))
        if (step + 1) % CKPT_EVERY == 0 and step + 1 < steps:
            ck.save(step + 1)
    if start < steps:
        rescale_frame_tokens(w, feats)
        ck.save(steps)
        log('frames %d: held-out presence accuracy %.3f, x/y error %.3f, content share of variance %.2f' %
            ((steps,) + frame_probe(w, seed)))


@torch.no_grad()
def rescale_frame_tokens(w, feats, n=1000):
    """Folds into the Q-Former's last LayerNorm (and, to keep its readings, the frame head) the
    affine map that gives its tokens zero mean per channel and unit variance on average over the
    frames of n training clips.

    Trained alone, the Q-Former left its tokens a near-constant vector plus content with a
    variance of 0.003 per channel (0.011 with the centring term of frame_loss). The video
    Q-Former adds a frame position embedding of unit variance to them and, measured, learnt
    from them neither motion nor even which objects were there; on the same tokens rescaled it
    read motion at 0.56 after 600 steps (docs/DEMO.md)."""
    D = models.QF['hidden_size']
    n = min(n, feats.shape[0])
    t = torch.cat([models.qformer_frames(w, clip_feats(feats, range(lo, min(n, lo + 64))).flatten(0, 1))
                   for lo in range(0, n, 64)]).reshape(-1, D)
    m = t.mean(0)
    s = float(1 / t.var(0).mean().sqrt())
    last = 'qformer.encoder.layer.%d.output_query.LayerNorm.' % (models.QF['num_hidden_layers'] - 1)
    w[last + 'weight'].mul_(s)
    w[last + 'bias'].sub_(m).mul_(s)
    # the head read t = t' / s + m
    w['frame_head.bias'].add_(w['frame_head.weight'] @ m.repeat(models.N_QUERY))
    w['frame_head.weight'].div_(s)
    log('frames: tokens rescaled by %.2f' % s)


@torch.no_grad()
def cache_frame_tokens(w, feats, path, chunk=64):
    """The frozen frame Q-Former's tokens of every training frame, f16 [N, 8, N_QUERY, D]."""
    N = feats.shape[0]
    out = np.lib.format.open_memmap(path + '.tmp', 'w+', np.float16, (N, 8, models.N_QUERY, models.QF['hidden_size']))
    for lo in range(0, N, chunk):
        f = clip_feats(feats, range(lo, min(N, lo + chunk)))
        out[lo:lo + len(f)] = models.qformer_frames(w, f.flatten(0, 1)).view(len(f), 8, *out.shape[2:]).numpy()
    out.flush()
    del out
    os.replace(path + '.tmp', path)


# ---------------------------------------------------------------- stage 4: video + LLM

DESCRIBE = ['Describe the video.', 'What happens in the video?', 'Describe what you see.']


def scene_labels(rec):
    """Per (colour, shape) pair, in dense-label order: its motion's index, or 7 when absent."""
    lab = np.full(models.N_CLASSES - 1, len(world.MOTIONS), np.int64)
    for o in rec['scene']['objects']:
        lab[world.label_of(o['shape'], o['colour']) - 1] = world.MOTIONS.index(o['motion'])
    return lab


def scene_logits(w, tokens):
    """What the scene head reads from video tokens [B, nq, D]: each (colour, shape) pair's
    presence logit [B, 30], linear in all the tokens, and its motion logits [B, 30, 7], read the
    way the LLM must read them: the pair's query attends over the tokens and one classifier,
    shared by all pairs, reads what it gathers. Read linearly from all the tokens (as before),
    motion came out at 0.66 while the LLM answered 0.95 of the questions about a clip's only
    object and 0.37 about one of three: it was there, entangled with the other objects'."""
    presence = F.linear(tokens.flatten(1), w['scene_head.weight'], w['scene_head.bias'])
    k = F.linear(tokens, w['scene_key.weight'], w['scene_key.bias'])
    v = F.linear(tokens, w['scene_value.weight'], w['scene_value.bias'])
    att = torch.softmax(w['scene_query'] @ k.transpose(1, 2) / math.sqrt(k.shape[-1]), -1)
    return presence, F.linear(att @ v, w['scene_motion.weight'], w['scene_motion.bias'])


def scene_loss(w, tokens, clips, vid):
    """Which pairs the clip holds (one logit per pair) and, for those it holds only, how each
    moves. One cross-entropy over "absent or a motion" for all 30 pairs gave the ~2 present
    pairs a fifteenth of the weight, and the motion term never left chance."""
    presence, motion = scene_logits(w, tokens)
    lab = torch.from_numpy(np.stack([scene_labels(clips[i]) for i in vid]))
    present = lab < len(world.MOTIONS)
    return (F.binary_cross_entropy_with_logits(presence, present.float())
            + F.cross_entropy(motion[present], lab[present]))


DESCRIBE_SOUND = ['Describe the sound.', 'What do you hear?']
ASK_IMU = ['What is the person doing?', 'What activity is this?', 'Describe the motion.']
# each medium the LLM reads: its prompt placeholder, its rows and how a caption is asked for
MEDIA = {'video': ('<video>', models.VQF['n_query'], DESCRIBE),
         'audio': ('<audio>', models.AV_ROWS, DESCRIBE_SOUND),
         'imu': ('<imu>', models.AV_ROWS, ASK_IMU)}


def question_example(sp, q, medium):
    """(prompt ids with -1 for the medium's rows, answer ids) of a world.questions item."""
    placeholder, n_rows, _ = MEDIA[medium]
    return vocab.prompt_ids(sp, q['q'], n_rows, placeholder), vocab.answer_ids(sp, q['a'])


def caption_example(sp, caption, rng, medium):
    placeholder, n_rows, ask = MEDIA[medium]
    return vocab.prompt_ids(sp, ask[int(rng.integers(len(ask)))], n_rows, placeholder), vocab.answer_ids(sp, caption)


def lm_examples(sp, scene, rng, n_qa, medium='video'):
    """n_qa questions about scene and, half the time, its caption, as seen or heard."""
    qs = world.questions(scene, rng)
    out = [question_example(sp, qs[j], medium) for j in rng.permutation(len(qs))[:n_qa]]
    if rng.random() < 0.5:
        out.append(caption_example(sp, world.caption(scene), rng, medium))
    return out


def t2i_example(sp, rec):
    return vocab.prompt_ids(sp, rec['prompt']), vocab.signal_ids(sp) + [vocab.EOS]


def lm_batch(sp, clips, t2i, vid, rng, n_qa):
    """The language targets of one step: n_qa questions (and sometimes the caption) of each clip
    in vid, as (prompt, answer, index in vid), then batch / 8 image requests without video."""
    seqs = []
    for j, i in enumerate(vid):
        seqs += [(a, b, j) for a, b in lm_examples(sp, clips[i]['scene'], rng, n_qa)]
    for i in rng.integers(len(t2i), size=max(1, len(vid) // 8)):
        a, b = t2i_example(sp, t2i[i])
        seqs.append((a, b, -1))
    return seqs


def clip_feats(feats, vid):
    """Cached f16 rows of clips vid (ViT features [.., 8, tokens, D] or frame Q-Former tokens
    [.., 8, N_QUERY, D]) as float32."""
    return torch.from_numpy(np.stack([feats[i] for i in vid]).astype(np.float32))


def pack_tree(seqs):
    """Lays the sequences of one step out as trees, one per video: the prompt prefix they share
    (BOS, "[INST] ", the video rows) once, then each sequence's own rest. Each rest attends to
    its prefix and to itself, at the positions it would have alone, so every answer token gets
    the logits it gets unpacked. Trees share rows (first fit, longest first), so a step computes
    about half the positions that padding every sequence to the longest did.
    Returns ids, target, video row source (-1: none), pos, mask [B, L, L] and which sequence
    each target belongs to (-1: no target)."""
    groups = {}
    for s, (a, b, v) in enumerate(seqs):
        groups.setdefault(v, []).append((a, b, s))
    trees = []
    for v, grp in groups.items():
        P = min(len(a) for a, _, _ in grp) - 1       # each rest keeps at least one prompt token
        while any(a[:P] != grp[0][0][:P] for a, _, _ in grp):
            P -= 1
        ids, tgt, pos, branch, owner = list(grp[0][0][:P]), [-100] * P, list(range(P)), [0] * P, [-1] * P
        for n, (a, b, s) in enumerate(grp, 1):
            rest = a[P:] + b
            ids += rest
            tgt += [-100] * (len(a) - P - 1) + b + [-100]
            owner += [-1] * (len(a) - P - 1) + [s] * len(b) + [-1]
            pos += range(P, P + len(rest))
            branch += [n] * len(rest)
        trees.append((v, ids, tgt, pos, branch, owner))
    trees.sort(key=lambda t: -len(t[1]))
    L = len(trees[0][1])
    rows = []                                        # [trees of the row, positions used]
    for t in trees:
        r = next((r for r in rows if r[1] + len(t[1]) <= L), None)
        if r is None:
            r = [[], 0]
            rows.append(r)
        r[0].append(t)
        r[1] += len(t[1])
    B = len(rows)
    ids = torch.zeros((B, L), dtype=torch.long)
    tgt = torch.full((B, L), -100, dtype=torch.long)
    pos = torch.zeros((B, L), dtype=torch.long)
    src = torch.full((B, L), -1, dtype=torch.long)   # which video's row, -1: a token
    tree = torch.full((B, L), -1, dtype=torch.long)  # padding: a tree of its own
    branch = torch.zeros((B, L), dtype=torch.long)
    owner = torch.full((B, L), -1, dtype=torch.long)
    for r, (ts, _) in enumerate(rows):
        at = 0
        for k, (v, i, t, p, br, ow) in enumerate(ts):
            sl = slice(at, at + len(i))
            ids[r, sl], tgt[r, sl], pos[r, sl], branch[r, sl] = torch.tensor(i), torch.tensor(t), torch.tensor(p), torch.tensor(br)
            owner[r, sl] = torch.tensor(ow)
            tree[r, sl] = k
            rows_at = (ids[r, sl] < 0).nonzero()[:, 0] + at
            src[r, rows_at] = v * len(rows_at) + torch.arange(len(rows_at))
            at += len(i)
    causal = torch.ones((L, L), dtype=torch.bool).tril()
    same = lambda x: x[:, :, None] == x[:, None, :]  # noqa: E731
    allowed = causal & same(tree) & (same(branch) | (branch == 0)[:, None, :])
    mask = torch.zeros((B, L, L)).masked_fill(~allowed, float('-inf'))
    return ids, tgt, src, pos, mask, owner


def answer_logits(w, seqs, rows_of):
    """The logits of every answer token of seqs = [(prompt ids, answer ids, video index or -1)]
    under teacher forcing, packed by pack_tree; rows_of [n_videos, n_query, E] fills the -1
    positions. Returns logits [n, V], their targets [n] and their sequences [n]."""
    ids, tgt, src, pos, mask, owner = pack_tree(seqs)
    assert int((ids < 0).sum()) == int((src >= 0).sum()), 'the video rows must lie in the shared prefix'
    # one gather + where instead of a slice assignment per row: autograd would copy the whole
    # embedding gradient once per assignment
    emb = torch.where((ids < 0)[..., None], rows_of.reshape(-1, rows_of.shape[-1])[src.clamp(min=0)],
                      models.embed_tokens(w, ids))
    at = tgt >= 0
    return models.llm_forward(w, emb, pos=pos, mask=mask, at=at), tgt[at], owner[at]


def lm_loss(w, seqs, rows_of):
    """Next-token loss on the answers of seqs (answer_logits)."""
    logits, tgt, _ = answer_logits(w, seqs, rows_of)
    return F.cross_entropy(logits, tgt)


def probe_seqs(sp, scenes, seed, medium):
    """Every question about each of scenes, as (prompt, answer, scene index), and their types."""
    rng = np.random.default_rng([seed, 99])
    seqs, types = [], []
    for i, scene in enumerate(scenes):
        for q in world.questions(scene, rng):
            seqs.append(question_example(sp, q, medium) + (i,))
            types.append(q['type'])
    return seqs, types


def probe_set(w, sp, seed, n=200):
    """Held-out clips (never trained on) with every question of each: their ViT features, the
    language sequences (as lm_batch's) and the questions' types."""
    frames, recs = data.render_chunk((0, n, seed), 'heldout')
    return (infer.vit_features(w, frames),) + probe_seqs(sp, [r['scene'] for r in recs], seed, 'video')


@torch.no_grad()
def probe(w, rows, seqs, types):
    """Exact-answer accuracy on a probe set, overall and per question type: an answer is right
    when every one of its tokens, EOS included, is the argmax under teacher forcing, which is
    when greedy decoding gives it. rows [n, rows, E] fill the sequences' -1 positions."""
    logits, tgt, owner = answer_logits(w, seqs, rows)
    wrong = torch.zeros(len(seqs), dtype=torch.bool).index_put_((owner,), logits.argmax(1) != tgt, accumulate=True)
    hit = {}
    for t, ok in zip(types, (~wrong).tolist()):
        hit.setdefault(t, []).append(ok)
    return np.mean([x for v in hit.values() for x in v]), {k: round(float(np.mean(v)), 3) for k, v in hit.items()}


VIDEO_LR = 1e-3


@torch.no_grad()
def scene_probe(w, feats, recs):
    """On held-out clips (ViT features feats): how often the scene head calls each pair's
    presence right, and each present object's motion (chance 1/7), overall and in clips of 1,
    2 and 3 objects."""
    presence, motion = scene_logits(w, models.encode_video(w, feats))
    lab = torch.from_numpy(np.stack([scene_labels(r) for r in recs]))
    present = lab < len(world.MOTIONS)
    hit = motion.argmax(-1) == lab
    n_obj = present.sum(1, keepdim=True).expand_as(present)
    return (float(((presence > 0) == present).float().mean()), float(hit[present].float().mean()),
            [round(float(hit[present & (n_obj == k)].float().mean()), 3) for k in (1, 2, 3)])


def stage_video(p, sp, ftok, pooled, clips, steps, batch, ckpt_path, seed):
    """The video Q-Former and video head on the cached frame tokens ftok [N, 8, N_QUERY, D] of
    the frozen frame encoder (Video-LLaMA trains it so): contrastive video<->caption, the text
    tower training too, frame<->caption keeping the image projection aligned with it, and the
    scene head. The LLM learns to read the result in stage qa: sharing these steps with the
    next-token loss made each step 6x dearer, and motion stayed at chance there (docs/DEMO.md)."""
    w = p.t
    frames, recs = data.render_chunk((0, 300, seed), 'heldout')
    pfeats = infer.vit_features(w, frames)
    train = [v for k, v in w.items() if p.group[k] in ('clip', 'video', 'head') and not k.startswith('llama_proj')]
    train += [v for k, v in w.items() if k.startswith('scene_')] + [w['video_logit_scale']]
    opt, ck, start = trainer(p, train, VIDEO_LR, ckpt_path)
    rng = np.random.default_rng([seed, 3, start])
    n, t0 = len(clips), time.time()
    for step in range(start, steps):
        for g in opt.param_groups:
            g['lr'] = lr_at(step, steps, VIDEO_LR, warm=100)
        vid = rng.integers(n, size=batch)
        tokens = models.video_qformer(w, clip_feats(ftok, vid))
        caps = [world.caption(clips[i]['scene']) for i in vid]
        l_vid = contrastive(models.video_head(w, tokens), text_embed(w, sp, caps), caps, w['video_logit_scale'])
        # which objects the clip holds and how each moves, read from all video tokens: a dense
        # target that makes the video Q-Former keep what the questions ask about (not exported)
        l_scene = scene_loss(w, tokens, clips, vid)
        # frame <-> frame caption keeps the image projection on the moving text tower
        l_img = frame_contrastive(w, sp, pooled, clips, rng, batch)
        loss = 0.5 * (l_vid + l_img) + l_scene
        update(opt, loss, train)
        if step % 100 == 0 or step == steps - 1:
            log('video %d/%d loss %.3f (video %.3f frame %.3f scene %.3f) %.2f s/step' %
                (step, steps, loss.item(), l_vid.item(), l_img.item(), l_scene.item(),
                 (time.time() - t0) / (step - start + 1)))
        if (step + 1) % CKPT_EVERY == 0:
            ck.save(step + 1)
        if (step + 1) % 500 == 0 or step == steps - 1:
            log('video %d probe: held-out presence %.3f, motion %.3f (1, 2, 3 objects: %s)' %
                ((step + 1,) + scene_probe(w, pfeats, recs)))
    ck.save(steps)


QA_LR = 1e-3
AV_BATCH = (16, 8)              # sounds and IMU traces a step, beside the batch's clips


def av_examples(sp, av, rng, first):
    """AV_BATCH sounds (2 questions each and, half the time, the caption) and IMU traces (the
    activity), as (prompt, answer, row index from first), and their embeddings' indices."""
    aud = rng.integers(len(av['audio']), size=AV_BATCH[0])
    imu = rng.integers(len(av['imu']), size=AV_BATCH[1])
    seqs = [(a, b, first + j) for j, k in enumerate(aud) for a, b in lm_examples(sp, av['audio_scenes'][k], rng, 2, 'audio')]
    seqs += [caption_example(sp, av['imu_caps'][k], rng, 'imu') + (first + len(aud) + j,) for j, k in enumerate(imu)]
    return seqs, aud, imu


def stage_qa(p, sp, ftok, clips, t2i, av, steps, batch, ckpt_path, seed):
    """The LLM, llama_proj and the audio and IMU input projections, on the frozen encoders'
    outputs: next-token loss on answers (4 questions a clip), captions and image requests, and on
    av_examples' questions about sounds and IMU traces (av: stages_out.av_sets). The visual side
    is frozen, so every clip's video tokens are computed once, from the cached frame tokens ftok.

    Video rows come before the question, as omnid's prompt puts them. Measured once (from an
    LLM trained jointly with the visual side, 300 steps each): presence answers reached 0.84
    (chance 0.50) so, and 0.55 with the rows after the question, where they could attend to it."""
    w = p.t
    pfeats, pseqs, ptypes = probe_set(w, sp, seed)
    aseqs, atypes = probe_seqs(sp, av['probe_scenes'], seed, 'audio')
    iseqs = [caption_example(sp, c, np.random.default_rng([seed, 98, i]), 'imu') + (i,)
             for i, c in enumerate(av['probe_imu_caps'])]
    with torch.no_grad():
        video = torch.cat([models.video_qformer(w, clip_feats(ftok, range(lo, min(len(clips), lo + 256))))
                           for lo in range(0, len(clips), 256)])
    train = p.of('llm', 'inproj') + [w['llama_proj.weight'], w['llama_proj.bias']]
    opt, ck, start = trainer(p, train, QA_LR, ckpt_path)
    rng = np.random.default_rng([seed, 4, start])
    n, t0 = len(clips), time.time()
    for step in range(start, steps):
        for g in opt.param_groups:
            g['lr'] = lr_at(step, steps, QA_LR, warm=100)
        vid = rng.integers(n, size=batch)
        seqs = lm_batch(sp, clips, t2i, vid, rng, 4)
        more, aud, imu = av_examples(sp, av, rng, batch)
        # bf16 matmuls: this CPU's AVX512-BF16 made a step 3x faster, with the same losses
        # (docs/DEMO.md); the weights, their update and every probe stay f32
        with torch.autocast('cpu', dtype=torch.bfloat16):
            rows = torch.cat([F.linear(video[vid], w['llama_proj.weight'], w['llama_proj.bias']),
                              infer.av_rows(w, 'audio', av['audio'][aud]), infer.av_rows(w, 'imu', av['imu'][imu])])
            loss = lm_loss(w, seqs + more, rows)
        update(opt, loss, train)
        if step % 50 == 0 or step == steps - 1:
            log('qa %d/%d lm %.3f %.2f s/step' % (step, steps, loss.item(), (time.time() - t0) / (step - start + 1)))
        if (step + 1) % CKPT_EVERY == 0:
            ck.save(step + 1)
        if (step + 1) % 500 == 0 or step == steps - 1:
            with torch.no_grad():
                for name, held_rows, sq, ty in (
                        ('video', infer.video_rows(w, pfeats)[1], pseqs, ptypes),
                        ('audio', infer.av_rows(w, 'audio', av['probe_audio']), aseqs, atypes),
                        ('imu', infer.av_rows(w, 'imu', av['probe_imu']), iseqs, ['activity'] * len(iseqs))):
                    acc, per = probe(w, held_rows, sq, ty)
                    log('qa %d probe: held-out %s answer accuracy %.3f %s' % (step + 1, name, acc, per))
    ck.save(steps)
