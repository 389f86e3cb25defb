"""ShapesWorld text-to-image glue: training, sampling and evaluation of the image decoder
(vae.py + unet.py) and of the NExT-GPT output projector (outproj.py), called by train.py.

Every trainer takes (steps, threads, seed, ckpt): the model is initialised from `seed`, each
step draws its batch and noise from a generator seeded by (seed, stage, step) so a run resumed
from its checkpoint (written every CKPT_EVERY steps and at the end) continues exactly as an
uninterrupted one; a checkpoint that already holds `steps` steps is loaded and returned as is.
"""
import copy
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from outproj import TextFcLayer, outproj_config
from schedule import lr_at
from unet import UNet2DConditionModel, add_noise, alphas_cumprod, cfg_combine, ddim_sample, unet_config
from vae import AutoencoderKL, to_tensor, to_uint8, vae_config

CKPT_EVERY = 200
STAGE_SALT = {'vae': 1, 'unet': 2, 'outproj': 3}


def _train(stage, build, config, steps, threads, seed, ckpt, prepare, loss_fn, lr, warmup, log, ema_decay=None):
    """Shared loop. build(config) → model; prepare() → data, run only when steps remain;
    loss_fn(model, data, generator) → scalar loss. Returns the model in eval mode, or, with
    ema_decay, its exponential moving average (decay warmed up as min(d, (1+k)/(10+k))). The
    learning-rate warm-up is at most a tenth of the run, so that short runs are not all warm-up."""
    torch.set_num_threads(threads)
    warmup = min(warmup, max(1, steps // 10))
    state = torch.load(ckpt) if ckpt and os.path.exists(ckpt) else None
    torch.manual_seed(seed * 7919 + STAGE_SALT[stage])
    model = build(state['config'] if state else config)
    ema = copy.deepcopy(model) if ema_decay else None
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, foreach=True)
    start = 0
    if state:
        model.load_state_dict(state['model'])
        opt.load_state_dict(state['opt'])
        if ema is not None:
            ema.load_state_dict(state['ema'])
        start = state['step']
    if start < steps:
        data = prepare()
        model.train()
        t0, acc = time.time(), []
        for step in range(start, steps):
            for group in opt.param_groups:
                group['lr'] = lr_at(step, steps, lr, warmup, floor=0.1)
            g = torch.Generator().manual_seed((seed * 1000 + STAGE_SALT[stage]) * 1_000_003 + step)
            loss = loss_fn(model, data, g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if ema is not None:
                d = min(ema_decay, (1 + step) / (10 + step))
                with torch.no_grad():
                    for pe, p in zip(ema.parameters(), model.parameters()):
                        pe.mul_(d).add_(p, alpha=1 - d)
            acc.append(loss.item())
            done = step + 1
            if done % 100 == 0 or done == steps:
                log(f'{stage}: step {done}/{steps} loss {np.mean(acc):.5f} '
                    f'{len(acc) / (time.time() - t0):.2f} steps/s')
                t0, acc = time.time(), []
            if ckpt and (done % CKPT_EVERY == 0 or done == steps):
                _save(ckpt, model, opt, done, ema)
    out = ema if ema is not None else model
    out.eval()
    return out


def _save(path, model, opt, step, ema):
    tmp = path + '.tmp'
    st = {'config': model.config, 'model': model.state_dict(), 'opt': opt.state_dict(), 'step': step}
    if ema is not None:
        st['ema'] = ema.state_dict()
    torch.save(st, tmp)
    os.replace(tmp, path)


def train_vae(images, steps, threads, seed, ckpt=None, config=None, batch=32, lr=1e-3, kl_weight=1e-6, crop=32,
              log=print):
    """images uint8 [n,64,64,3] → AutoencoderKL. Loss per image = Σ|x − x̂| + kl_weight·KL, the
    LDM weighting (reconstruction summed over pixels), divided by the pixel count. Trained on
    random crop×crop windows (one offset per batch; the model is convolutional apart from its
    mid-block attention, as SD's VAE was trained at 256 and is used at 512): 4× cheaper steps.
    Afterwards config['scaling_factor'] = 1/std of the full-size latent means of up to 1024
    training images."""
    x = to_tensor(images)

    def loss_fn(model, data, g):
        xb = data[torch.randint(len(data), (batch,), generator=g)]
        oy, ox = (int(v) for v in torch.randint(0, xb.shape[-1] - crop + 1, (2,), generator=g))
        xb = xb[:, :, oy:oy + crop, ox:ox + crop]
        mean, logvar = model.encode(xb)
        z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=g)
        rec = (model.decode(z) - xb).abs().flatten(1).sum(1)
        kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).flatten(1).sum(1)
        return (rec + kl_weight * kl).mean() / xb[0].numel()

    vae = _train('vae', AutoencoderKL, config or vae_config(), steps, threads, seed, ckpt, lambda: x,
                 loss_fn, lr, 100, log)
    with torch.no_grad():
        means = torch.cat([vae.encode(c)[0] for c in x[:1024].split(256)])
    vae.config['scaling_factor'] = float(1.0 / means.std())
    return vae


def encode_latents(vae, images, chunk=256):
    """uint8 images → (mean, std) of the unscaled posterior, in chunks, without gradients."""
    means, stds = [], []
    with torch.no_grad():
        for c in to_tensor(images).split(chunk):
            m, lv = vae.encode(c)
            means.append(m)
            stds.append((0.5 * lv).exp())
    return torch.cat(means), torch.cat(stds)


def train_unet(vae, images, cond, uncond, steps, threads, seed, ckpt=None, config=None, batch=64, lr=1e-3,
               p_uncond=0.1, ema_decay=0.999, log=print):
    """ε-prediction on VAE latents (sampled from the posterior, × scaling_factor) at uniform
    t ∈ [0, 1000); a p_uncond fraction of the conditions is replaced by `uncond` so that
    classifier-free guidance works. cond [n,L,Dc] float32, uncond [L,Dc]. Returns the EMA
    weights (ema_decay None: the raw ones)."""
    cond = torch.as_tensor(np.asarray(cond, dtype=np.float32))
    uncond = torch.as_tensor(np.asarray(uncond, dtype=np.float32))
    sf = vae.config['scaling_factor']
    cfg = config or unet_config(cond.shape[-1])
    ac = alphas_cumprod(cfg).float()

    def loss_fn(model, data, g):
        mean, std = data
        idx = torch.randint(len(mean), (batch,), generator=g)
        z0 = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=g)) * sf
        t = torch.randint(0, len(ac), (batch,), generator=g)
        noise = torch.randn(z0.shape, generator=g)
        drop = torch.rand(batch, generator=g) < p_uncond
        ctx = torch.where(drop[:, None, None], uncond[None], cond[idx])
        return F.mse_loss(model(add_noise(z0, noise, t, ac), t, ctx), noise)

    return _train('unet', UNet2DConditionModel, cfg, steps, threads, seed, ckpt,
                  lambda: encode_latents(vae, images), loss_fn, lr, 200, log, ema_decay)


def train_outproj(signal_h, signal_e, targets, steps, threads, seed, ckpt=None, config=None, batch=64,
                  lr=5e-4, log=print):
    """MSE from TextFcLayer(h_signal + E_signal) to the UNet's conditioning for the caption
    (NExT-GPT's target). signal_h [n,4,W_llm], signal_e [4,W_llm], targets [n,L,Dc]."""
    h = torch.as_tensor(np.asarray(signal_h, dtype=np.float32))
    e = torch.as_tensor(np.asarray(signal_e, dtype=np.float32))
    y = torch.as_tensor(np.asarray(targets, dtype=np.float32))
    cfg = config or outproj_config(h.shape[-1], y.shape[-1], y.shape[1], num_signal_tokens=h.shape[1])

    def loss_fn(model, data, g):
        idx = torch.randint(len(h), (batch,), generator=g)
        return F.mse_loss(model(h[idx], e), y[idx])

    return _train('outproj', TextFcLayer, cfg, steps, threads, seed, ckpt, lambda: None, loss_fn, lr, 100, log)


def sample_latents(unet, cond, uncond, steps=25, guidance=4.0, seed=0):
    """DDIM (η = 0) from seeded noise with classifier-free guidance; returns scaled latents."""
    cond = torch.as_tensor(np.asarray(cond, dtype=np.float32))
    uncond = torch.as_tensor(np.asarray(uncond, dtype=np.float32))
    c = unet.config
    b = len(cond)
    x = torch.randn((b, c['in_channels'], c['sample_size'], c['sample_size']),
                    generator=torch.Generator().manual_seed(seed))
    ctx = torch.cat([uncond[None].expand(b, -1, -1), cond])

    def eps_fn(xt, t):
        e_u, e_c = unet(torch.cat([xt, xt]), torch.full((2 * b,), t), ctx).chunk(2)
        return cfg_combine(e_u, e_c, guidance)

    with torch.no_grad():
        return ddim_sample(eps_fn, x, steps, c)


def sample(vae, unet, cond, uncond, steps=25, guidance=4.0, seed=0, threads=None):
    """cond [b,L,Dc] → uint8 images [b,64,64,3]."""
    if threads:
        torch.set_num_threads(threads)
    z = sample_latents(unet, cond, uncond, steps, guidance, seed)
    with torch.no_grad():
        return to_uint8(vae.decode(z / vae.config['scaling_factor']))


def adherence(images, want_colour, want_shape, classify):
    """classify(images) → (colour_names, shape_names). Fractions right per attribute and both."""
    colours, shapes = classify(images)
    c = np.array([a == b for a, b in zip(colours, want_colour)])
    s = np.array([a == b for a, b in zip(shapes, want_shape)])
    return {'n': len(c), 'colour': float(c.mean()), 'shape': float(s.mean()), 'both': float((c & s).mean())}


def state_dicts(vae=None, unet=None, outproj=None):
    """{'vae'|'unet'|'outproj': {'config': dict, 'tensors': {diffusers / NExT-GPT name: float32
    numpy}}} for the models given. The projector's names are NExT-GPT's sub-keys (its checkpoint
    prefixes them with gen_text_hidden_fcs.0.)."""
    out = {}
    for name, m in (('vae', vae), ('unet', unet), ('outproj', outproj)):
        if m is not None:
            out[name] = {'config': dict(m.config),
                         'tensors': {k: v.detach().float().cpu().numpy().copy() for k, v in m.state_dict().items()}}
    return out
