"""ShapesWorld audio and IMU encoders: tiny ImageBind towers (MODELS.md section 2) trained into the
frozen 64-wide joint space, plus the retrieval metric.

The modules mirror ImageBind's module tree, so `model.state_dict()` already carries the released
checkpoint's names (`modality_preprocessors.audio.rgbt_stem.proj.weight`, `modality_trunks.imu.
blocks.0.attn.bias_k`, ...) and omnid reads them like imagebind_huge.pth. Differences from
imagebind_huge are sizes only: 64 mel bins, a target length equal to the longest training clip,
fbank normalisation constants measured on the training clips, a 400-sample IMU trace, a 64-wide
output, and no drop-path. One clip per sound (ImageBind cuts 2 s clips and averages them).

Training is InfoNCE from the encoder's embedding to the bank of all (distinct) frozen target
embeddings, where every target with the same key (canonical caption) is a positive, not a negative.
The logit scale is the postprocessor's fixed ImageBind value (audio 20, IMU 5). Each step reseeds
torch from (seed, step) before drawing its batch, so a run resumed from its checkpoint is identical
to an uninterrupted one.
"""
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio

from schedule import lr_at

JOINT = 64
CKPT_EVERY = 200
AUDIO = dict(modality='audio', width=64, depth=2, heads=4, sample_rate=16000, mel_bins=64,
             frame_length=25.0, frame_shift=10.0, kernel=16, stride=10, logit_scale=20.0,
             head_dropout=0.0)
IMU = dict(modality='imu', width=64, depth=2, heads=4, channels=6, length=400, kernel=8,
           logit_scale=5.0, head_dropout=0.0)
TRAIN = dict(batch=128, audio_lr=3e-3, imu_lr=2e-3, weight_decay=0.05, warmup=0.05)


# ---------------------------------------------------------------- audio features (ImageBind data.py)

def fbank(wave, cfg):
    """Un-normalised log-mel [mel_bins, frames] of one waveform, ImageBind's kaldi settings."""
    w = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    w = w - w.mean()
    fb = torchaudio.compliance.kaldi.fbank(
        w[None], htk_compat=True, sample_frequency=cfg['sample_rate'], use_energy=False,
        window_type='hanning', num_mel_bins=cfg['mel_bins'], dither=0.0,
        frame_length=cfg['frame_length'], frame_shift=cfg['frame_shift'])
    return fb.t()


def audio_input(fbanks, cfg):
    """[n, 1, mel_bins, target_length]: zero-pad or crop the time axis, then normalise (in that
    order, as ImageBind does, so padded columns hold -mean/std)."""
    out = torch.zeros(len(fbanks), 1, cfg['mel_bins'], cfg['target_length'])
    for i, fb in enumerate(fbanks):
        n = min(fb.shape[1], cfg['target_length'])
        out[i, 0, :, :n] = fb[:, :n]
    return (out - cfg['fbank_mean']) / cfg['fbank_std']


def audio_config(waves, **arch):
    """AUDIO with the sizes that depend on the training clips: target length (the longest clip's
    frame count) and the fbank mean / std over all training frames."""
    cfg = dict(AUDIO, **arch)
    fbs = [fbank(w, cfg) for w in waves]
    allv = torch.cat([fb.reshape(-1) for fb in fbs]).double()
    cfg['target_length'] = max(fb.shape[1] for fb in fbs)
    cfg['fbank_mean'] = float(allv.mean())
    cfg['fbank_std'] = float(allv.std())
    return cfg, fbs


def imu_config(traces, **arch):
    """IMU with per-sensor input scales (accelerometer, gyroscope RMS over the training traces);
    the trace is divided by them so both sensors enter the stem at unit scale."""
    cfg = dict(IMU, **arch)
    x = np.asarray(traces, dtype=np.float64)
    acc, gyr = float(np.sqrt(np.mean(x[:, :3] ** 2))), float(np.sqrt(np.mean(x[:, 3:] ** 2)))
    cfg['input_scale'] = [acc] * 3 + [gyr] * 3
    return cfg


def imu_input(traces, cfg):
    x = torch.as_tensor(np.asarray(traces, dtype=np.float32))
    return x / torch.tensor(cfg['input_scale'], dtype=torch.float32)[:, None]


# ---------------------------------------------------------------- modules (ImageBind's module tree)

class Mlp(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-LN block; attention is PyTorch's MHA (fused in_proj, bias_k / bias_v appended)."""

    def __init__(self, d, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, add_bias_kv=True)
        self.norm_1, self.norm_2 = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6)
        self.mlp = Mlp(d)

    def forward(self, x):                   # [L, B, D]
        h = self.norm_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm_2(x))


class Trunk(nn.Module):
    def __init__(self, d, depth, heads):
        super().__init__()
        self.blocks = nn.Sequential(*[Block(d, heads) for _ in range(depth)])

    def forward(self, x):                   # [B, L, D]
        return self.blocks(x.transpose(0, 1)).transpose(0, 1)


class PatchStem(nn.Module):
    """ImageBind's PatchEmbedGeneric with a single projection: proj, then tokens, then LN."""

    def __init__(self, proj, d):
        super().__init__()
        self.proj, self.norm_layer = proj, nn.LayerNorm(d)

    def forward(self, x):
        x = self.proj(x)
        if x.dim() == 4:                    # conv grid [B, D, mel rows, time cols], row-major
            x = x.flatten(2).transpose(1, 2)
        return self.norm_layer(x)


class PosEmbed(nn.Module):
    def __init__(self, n, d):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, n, d))


class AudioPreprocessor(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, k, s = cfg['width'], cfg['kernel'], cfg['stride']
        self.rgbt_stem = PatchStem(nn.Conv2d(1, d, k, s, bias=False), d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        grid = ((cfg['mel_bins'] - k) // s + 1) * ((cfg['target_length'] - k) // s + 1)
        self.pos_embedding_helper = PosEmbed(1 + grid, d)

    def forward(self, x):                   # [B, 1, mel, T]
        t = self.rgbt_stem(x)
        t = torch.cat([self.cls_token.expand(len(t), -1, -1), t], 1)
        return t + self.pos_embedding_helper.pos_embed


class ImuPreprocessor(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, k = cfg['width'], cfg['kernel']
        self.kernel = k
        self.imu_stem = PatchStem(nn.Linear(cfg['channels'] * k, d, bias=False), d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + cfg['length'] // k, d))

    def forward(self, x):                   # [B, C, L] -> windows [B, L/k, C*k], index c*k + j
        b, c, _ = x.shape
        w = x.unfold(2, self.kernel, self.kernel).permute(0, 2, 1, 3).reshape(b, -1, c * self.kernel)
        t = self.imu_stem(w)
        t = torch.cat([self.cls_token.expand(b, -1, -1), t], 1)
        return t + self.pos_embed


class SelectCls(nn.Module):
    def forward(self, x):
        return x[:, 0]


class Normalize(nn.Module):
    def forward(self, x):
        return F.normalize(x, dim=-1)


class LogitScale(nn.Module):
    """ImageBind's LearnableLogitScaling with learnable=False: ln(scale) kept as a buffer."""

    def __init__(self, scale):
        super().__init__()
        self.register_buffer('log_logit_scale', torch.tensor(math.log(scale)))

    def forward(self, x):
        return torch.clamp(self.log_logit_scale.exp(), max=100.0) * x


class BindEncoder(nn.Module):
    """One ImageBind modality: preprocessor -> trunk -> head -> (normalise, scale)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = dict(cfg)
        m, d = cfg['modality'], cfg['width']
        pre = AudioPreprocessor(cfg) if m == 'audio' else ImuPreprocessor(cfg)
        head = [nn.LayerNorm(d, eps=1e-6), SelectCls()]
        if m == 'imu':                      # ImageBind's IMU head has Dropout at index 2
            head.append(nn.Dropout(cfg['head_dropout']))
        head.append(nn.Linear(d, JOINT, bias=False))
        self.modality_preprocessors = nn.ModuleDict({m: pre})
        self.modality_trunks = nn.ModuleDict({m: Trunk(d, cfg['depth'], cfg['heads'])})
        self.modality_heads = nn.ModuleDict({m: nn.Sequential(*head)})
        post = nn.Sequential(Normalize(), LogitScale(cfg['logit_scale']))
        self.modality_postprocessors = nn.ModuleDict({m: post})
        self.apply(_init_weights)
        for name, p in self.named_parameters():
            if name.endswith(('cls_token', 'pos_embed')):
                nn.init.trunc_normal_(p, std=0.02)

    def forward(self, x):
        """L2-normalised embeddings [B, JOINT] (the postprocessor's normalisation, not its scale)."""
        m = self.cfg['modality']
        h = self.modality_heads[m](self.modality_trunks[m](self.modality_preprocessors[m](x)))
        return self.modality_postprocessors[m][0](h)

    def logit_scale(self):
        return float(self.modality_postprocessors[self.cfg['modality']][1](torch.ones(())))


def _init_weights(mod):
    if isinstance(mod, nn.Linear):
        nn.init.trunc_normal_(mod.weight, std=0.02)
        if mod.bias is not None:
            nn.init.zeros_(mod.bias)
    elif isinstance(mod, nn.LayerNorm):
        nn.init.ones_(mod.weight)
        nn.init.zeros_(mod.bias)


def build(cfg, state=None):
    """Model from config(model) and, optionally, state_dict_imagebind(model)."""
    model = BindEncoder(cfg)
    if state is not None:
        model.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in state.items()})
    return model.eval()


def state_dict_imagebind(model):
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def config(model):
    return dict(model.cfg)


# ---------------------------------------------------------------- training

def _bank(targets, keys):
    """Distinct (key, target) rows as the contrastive bank, and each item's key id: repeated
    identical targets (e.g. one text embedding per IMU caption) would otherwise weight the
    softmax by key frequency."""
    _, kid = np.unique(np.asarray(keys), return_inverse=True)
    tg = np.asarray(targets, dtype=np.float32)
    rows = np.unique(np.concatenate([kid[:, None].astype(np.float32), tg], 1), axis=0)
    bank = F.normalize(torch.from_numpy(rows[:, 1:].copy()), dim=-1)
    return bank, torch.from_numpy(rows[:, 0].astype(np.int64)), torch.from_numpy(kid.astype(np.int64))


def _train(model, inputs, targets, keys, threads, seed, steps, ckpt, batch, lr, log):
    torch.set_num_threads(threads)
    bank, bank_kid, kid = _bank(targets, keys)
    scale = model.logit_scale()
    # Weight decay on matrices only (not on norms, biases, bias_k / bias_v, cls or positions).
    named = list(model.named_parameters())
    decay = [p.dim() >= 2 and not n.endswith(('cls_token', 'pos_embed')) for n, p in named]
    opt = torch.optim.AdamW([{'params': [p for (_, p), d in zip(named, decay) if d],
                              'weight_decay': TRAIN['weight_decay']},
                             {'params': [p for (_, p), d in zip(named, decay) if not d], 'weight_decay': 0.0}],
                            lr=lr)
    run = dict(seed=seed, steps=steps, batch=batch, lr=lr, config=model.cfg)
    start = 0
    if ckpt and os.path.exists(ckpt):
        state = torch.load(ckpt)
        if state['run'] != run:
            raise ValueError(f'{ckpt}: checkpoint of a different run ({state["run"]} != {run})')
        model.load_state_dict(state['model'])
        opt.load_state_dict(state['opt'])
        start = state['step']
    model.train()
    for step in range(start, steps):
        torch.manual_seed(seed * 1000003 + step)          # batch and dropout depend on (seed, step)
        idx = torch.randint(len(inputs), (batch,))
        for g in opt.param_groups:
            g['lr'] = lr_at(step, steps, lr, max(1, int(TRAIN['warmup'] * steps)))
        logits = scale * model(inputs[idx]) @ bank.t()
        pos = kid[idx][:, None] == bank_kid[None, :]
        loss = (torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~pos, -1e9), 1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if log and (step % 50 == 0 or step + 1 == steps):
            log(f'{model.cfg["modality"]} step {step} loss {loss.item():.4f}')
        if ckpt and ((step + 1) % CKPT_EVERY == 0 or step + 1 == steps):
            tmp = ckpt + '.tmp'
            torch.save(dict(run=run, step=step + 1, model=model.state_dict(), opt=opt.state_dict()), tmp)
            os.replace(tmp, ckpt)
    return model.eval()


def train_audio(waves, targets, keys, threads=2, seed=0, steps=2500, ckpt=None, batch=TRAIN['batch'],
                lr=TRAIN['audio_lr'], log=print, **arch):
    """Audio tower trained towards targets [n, JOINT] (frozen video embeddings of each clip);
    items with equal keys are positives of each other. arch overrides AUDIO (width, depth, ...)."""
    torch.set_num_threads(threads)
    cfg, fbs = audio_config(waves, **arch)
    torch.manual_seed(seed)
    model = BindEncoder(cfg)
    return _train(model, audio_input(fbs, cfg), targets, keys, threads, seed, steps, ckpt, batch, lr, log)


def train_imu(traces, targets, keys, threads=2, seed=0, steps=600, ckpt=None, batch=TRAIN['batch'],
              lr=TRAIN['imu_lr'], log=print, **arch):
    """IMU tower trained towards targets [n, JOINT] (frozen text embeddings of the captions)."""
    torch.set_num_threads(threads)
    cfg = imu_config(traces, **arch)
    torch.manual_seed(seed)
    model = BindEncoder(cfg)
    return _train(model, imu_input(traces, cfg), targets, keys, threads, seed, steps, ckpt, batch, lr, log)


@torch.no_grad()
def _embed(model, x, chunk=256):
    model.eval()
    return torch.cat([model(x[i:i + chunk]) for i in range(0, len(x), chunk)]).numpy()


def embed_audio(model, waves):
    """[n, JOINT] L2-normalised embeddings of waveforms (16 kHz float)."""
    return _embed(model, audio_input([fbank(w, model.cfg) for w in waves], model.cfg))


def embed_imu(model, traces):
    """[n, JOINT] L2-normalised embeddings of [n, 6, length] traces."""
    return _embed(model, imu_input(traces, model.cfg))


def recall_at_1(queries, gallery, q_keys, g_keys):
    """Fraction of queries whose nearest gallery item (cosine) has the query's key."""
    q = F.normalize(torch.as_tensor(np.asarray(queries, dtype=np.float32)), dim=-1)
    g = F.normalize(torch.as_tensor(np.asarray(gallery, dtype=np.float32)), dim=-1)
    nearest = (q @ g.t()).argmax(1).numpy()
    return float(np.mean([g_keys[j] == k for j, k in zip(nearest, q_keys)]))
