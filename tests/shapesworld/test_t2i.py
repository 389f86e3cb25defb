#!/usr/bin/python3
"""tools/shapesworld text-to-image parts (vae.py, unet.py, outproj.py, t2i.py): tensor names and
shapes against the diffusers / NExT-GPT layouts, the scheduler and DDIM against their closed
forms, classifier-free guidance, VAE shapes, resumable training, and a tiny overfit where the
condition picks the image. Stand-ins (clearly not the real models): random conditioning
embeddings, a 4×4 box-filter autoencoder, PIL-drawn shapes. < 20 s at 1 thread."""
import math
import os
import re
import sys
import tempfile
import unittest

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
sys.path.insert(0, os.path.join(ROOT, 'tools', 'shapesworld'))
import outproj  # noqa: E402
import t2i  # noqa: E402
import unet  # noqa: E402
import vae  # noqa: E402

torch.set_num_threads(1)

BLOCK = r'(down_blocks\.\d+|mid_block|up_blocks\.\d+)'
UNET_NAMES = [
    r'conv_in\.(weight|bias)', r'time_embedding\.linear_[12]\.(weight|bias)',
    BLOCK + r'\.resnets\.\d+\.(norm1|conv1|time_emb_proj|norm2|conv2|conv_shortcut)\.(weight|bias)',
    BLOCK + r'\.attentions\.\d+\.(norm|proj_in|proj_out)\.(weight|bias)',
    BLOCK + r'\.attentions\.\d+\.transformer_blocks\.0\.norm[123]\.(weight|bias)',
    BLOCK + r'\.attentions\.\d+\.transformer_blocks\.0\.attn[12]\.to_[qkv]\.weight',
    BLOCK + r'\.attentions\.\d+\.transformer_blocks\.0\.attn[12]\.to_out\.0\.(weight|bias)',
    BLOCK + r'\.attentions\.\d+\.transformer_blocks\.0\.ff\.net\.(0\.proj|2)\.(weight|bias)',
    r'down_blocks\.\d+\.downsamplers\.0\.conv\.(weight|bias)', r'up_blocks\.\d+\.upsamplers\.0\.conv\.(weight|bias)',
    r'conv_norm_out\.(weight|bias)', r'conv_out\.(weight|bias)']
VAE_BLOCK = r'(encoder|decoder)\.(down_blocks\.\d+|mid_block|up_blocks\.\d+)'
VAE_NAMES = [
    r'(encoder|decoder)\.(conv_in|conv_norm_out|conv_out)\.(weight|bias)',
    VAE_BLOCK + r'\.resnets\.\d+\.(norm1|conv1|norm2|conv2|conv_shortcut)\.(weight|bias)',
    r'encoder\.down_blocks\.\d+\.downsamplers\.0\.conv\.(weight|bias)',
    r'decoder\.up_blocks\.\d+\.upsamplers\.0\.conv\.(weight|bias)',
    r'(encoder|decoder)\.mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(weight|bias)',
    r'(quant_conv|post_quant_conv)\.(weight|bias)']
TFM = r'tfm\.(encoder|decoder)\.layers\.\d+\.'
OUTPROJ_NAMES = [
    r'(fc|model)\.(weight|bias)', r'query_embs',
    TFM + r'(self_attn|multihead_attn)\.(in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias)',
    TFM + r'(linear1|linear2|norm1|norm2|norm3)\.(weight|bias)', r'tfm\.(encoder|decoder)\.norm\.(weight|bias)']


def check_names(test, tensors, patterns):
    for k in tensors:
        test.assertTrue(any(re.fullmatch(p, k) for p in patterns), f'unexpected tensor name {k}')


def draw(shape, rgb):
    """A stand-in 64×64 render (PIL) of one object on a dark background."""
    im = Image.new('RGB', (64, 64), (20, 30, 40))
    d = ImageDraw.Draw(im)
    if shape == 'circle':
        d.ellipse((16, 16, 48, 48), fill=rgb)
    else:
        d.rectangle((18, 18, 46, 46), fill=rgb)
    return np.asarray(im)


class BoxAE(torch.nn.Module):
    """Stand-in autoencoder with the AutoencoderKL interface: latent = 8×8 box average (RGB + a
    zero channel), decode = nearest upsampling, near-zero posterior variance."""

    config = {'scaling_factor': 1.0}

    def encode(self, x):
        m = F.avg_pool2d(x, 8)
        m = torch.cat([m, torch.zeros_like(m[:, :1])], dim=1)
        return m, torch.full_like(m, -30.0)

    def decode(self, z):
        return F.interpolate(z[:, :3], scale_factor=8, mode='nearest')


class Names(unittest.TestCase):
    def test_unet(self):
        m = unet.UNet2DConditionModel(unet.unet_config(96))
        sd = {k: tuple(v.shape) for k, v in m.state_dict().items()}
        check_names(self, sd, UNET_NAMES)
        tb = '.attentions.0.transformer_blocks.0.'
        want = {
            'conv_in.weight': (32, 4, 3, 3), 'time_embedding.linear_1.weight': (128, 32),
            'time_embedding.linear_2.weight': (128, 128),
            'down_blocks.0.resnets.0.conv1.weight': (32, 32, 3, 3),
            'down_blocks.0.resnets.0.time_emb_proj.weight': (32, 128),
            'down_blocks.0.downsamplers.0.conv.weight': (32, 32, 3, 3),
            'down_blocks.1.resnets.0.conv_shortcut.weight': (64, 32, 1, 1),
            'down_blocks.1.attentions.0.proj_in.weight': (64, 64, 1, 1),
            'down_blocks.1' + tb + 'attn1.to_k.weight': (64, 64),
            'down_blocks.1' + tb + 'attn2.to_k.weight': (64, 96),
            'down_blocks.1' + tb + 'attn2.to_out.0.bias': (64,),
            'down_blocks.1' + tb + 'ff.net.0.proj.weight': (512, 64),
            'down_blocks.1' + tb + 'ff.net.2.weight': (64, 256),
            'mid_block.resnets.1.conv2.weight': (64, 64, 3, 3),
            'mid_block' + tb + 'attn2.to_v.weight': (64, 96),
            # up path: concat(h, skip); widths from diffusers' prev/in/out channel rule
            'up_blocks.0.resnets.0.conv1.weight': (64, 128, 3, 3),
            'up_blocks.0.resnets.1.conv1.weight': (64, 128, 3, 3),
            'up_blocks.0.upsamplers.0.conv.weight': (64, 64, 3, 3),
            'up_blocks.1.resnets.1.conv1.weight': (64, 96, 3, 3),
            'up_blocks.2.resnets.0.conv1.weight': (32, 96, 3, 3),
            'up_blocks.2.resnets.1.conv_shortcut.weight': (32, 64, 1, 1),
            'conv_norm_out.weight': (32,), 'conv_out.weight': (4, 32, 3, 3)}
        for k, s in want.items():
            self.assertEqual(sd.get(k), s, k)
        for absent in ('down_blocks.0.attentions.0.norm.weight', 'down_blocks.2.downsamplers.0.conv.weight',
                       'up_blocks.2.attentions.0.norm.weight', 'up_blocks.2.upsamplers.0.conv.weight',
                       'down_blocks.2.resnets.0.conv_shortcut.weight'):
            self.assertFalse(absent in sd, absent)
        self.assertEqual(m.config['down_block_types'], ['DownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D'])
        self.assertEqual(m.config['up_block_types'], ['CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D'])
        out = m(torch.randn(2, 4, 16, 16), torch.tensor([0, 999]), torch.randn(2, 8, 96))
        self.assertEqual(tuple(out.shape), (2, 4, 16, 16))

    def test_vae(self):
        m = vae.AutoencoderKL(vae.vae_config())
        sd = {k: tuple(v.shape) for k, v in m.state_dict().items()}
        check_names(self, sd, VAE_NAMES)
        want = {
            'encoder.conv_in.weight': (16, 3, 3, 3), 'encoder.down_blocks.0.resnets.0.conv1.weight': (16, 16, 3, 3),
            'encoder.down_blocks.0.downsamplers.0.conv.weight': (16, 16, 3, 3),
            'encoder.down_blocks.1.resnets.0.conv_shortcut.weight': (32, 16, 1, 1),
            'encoder.mid_block.attentions.0.to_q.weight': (64, 64),
            'encoder.mid_block.attentions.0.group_norm.weight': (64,),
            'encoder.conv_out.weight': (8, 64, 3, 3), 'quant_conv.weight': (8, 8, 1, 1),
            'post_quant_conv.weight': (4, 4, 1, 1), 'decoder.conv_in.weight': (64, 4, 3, 3),
            'decoder.mid_block.resnets.1.conv2.weight': (64, 64, 3, 3),
            'decoder.up_blocks.0.resnets.1.conv1.weight': (64, 64, 3, 3),
            'decoder.up_blocks.0.upsamplers.0.conv.weight': (64, 64, 3, 3),
            'decoder.up_blocks.1.resnets.0.conv_shortcut.weight': (32, 64, 1, 1),
            'decoder.up_blocks.2.resnets.0.conv1.weight': (16, 32, 3, 3),
            'decoder.conv_out.weight': (3, 16, 3, 3)}
        for k, s in want.items():
            self.assertEqual(sd.get(k), s, k)
        for absent in ('encoder.down_blocks.2.downsamplers.0.conv.weight',
                       'decoder.up_blocks.2.upsamplers.0.conv.weight',
                       'decoder.up_blocks.0.resnets.2.conv1.weight'):
            self.assertFalse(absent in sd, absent)

    def test_outproj(self):
        cfg = outproj.outproj_config(in_dim=48, out_dim=96, num_queries=8, d_model=32, nhead=4, layers=2,
                                     dim_feedforward=64)
        m = outproj.TextFcLayer(cfg)
        sd = {k: tuple(v.shape) for k, v in m.state_dict().items()}
        check_names(self, sd, OUTPROJ_NAMES)
        want = {'fc.weight': (32, 48), 'query_embs': (1, 8, 32), 'model.weight': (96, 32),
                'tfm.encoder.layers.1.self_attn.in_proj_weight': (96, 32),
                'tfm.encoder.layers.0.linear1.weight': (64, 32),
                'tfm.decoder.layers.1.multihead_attn.in_proj_weight': (96, 32),
                'tfm.decoder.layers.0.norm3.weight': (32,),
                'tfm.encoder.norm.weight': (32,), 'tfm.decoder.norm.bias': (32,)}
        for k, s in want.items():
            self.assertEqual(sd.get(k), s, k)
        self.assertFalse('tfm.encoder.layers.2.norm1.weight' in sd)
        out = m(torch.randn(3, 4, 48), torch.randn(4, 48))
        self.assertEqual(tuple(out.shape), (3, 8, 96))

    def test_state_dicts(self):
        m = outproj.TextFcLayer(outproj.outproj_config(8, 6, 2, d_model=8, nhead=2, layers=1, dim_feedforward=8))
        sd = t2i.state_dicts(outproj=m)
        self.assertEqual(list(sd), ['outproj'])
        self.assertEqual(sd['outproj']['config']['num_queries'], 2)
        self.assertEqual(sd['outproj']['tensors']['query_embs'].dtype, np.float32)
        self.assertEqual(set(sd['outproj']['tensors']), set(m.state_dict()))


class Schedule(unittest.TestCase):
    cfg = unet.unet_config(8)

    def test_betas_and_timesteps(self):
        ac = unet.alphas_cumprod(self.cfg)
        betas = 1 - ac / torch.cat([torch.ones(1, dtype=ac.dtype), ac[:-1]])
        self.assertAlmostEqual(float(betas[0]), 0.00085, places=9)
        self.assertAlmostEqual(float(betas[-1]), 0.012, places=9)
        b0, b1 = math.sqrt(0.00085), math.sqrt(0.012)
        self.assertAlmostEqual(float(betas[500]), (b0 + 500 / 999 * (b1 - b0)) ** 2, places=9)
        self.assertEqual(unet.ddim_timesteps(25, self.cfg), [961 - 40 * k for k in range(25)])

    def test_timestep_embedding(self):
        e = unet.timestep_embedding(torch.tensor([7]), 32)[0]
        f = [math.exp(-math.log(10000) * i / 16) for i in range(16)]
        want = [math.cos(7 * x) for x in f] + [math.sin(7 * x) for x in f]
        self.assertTrue(np.allclose(e.numpy(), want, atol=1e-5))

    def test_ddim_with_true_noise(self):
        """A model that predicts the exact noise of a fixed x0 keeps ε constant, so DDIM must end
        at √ᾱ_final·x0 + √(1−ᾱ_final)·ε_T in closed form (ᾱ_final = ᾱ_0: set_alpha_to_one False)."""
        ac = unet.alphas_cumprod(self.cfg)
        g = torch.Generator().manual_seed(0)
        x0 = torch.rand((2, 4, 16, 16), generator=g, dtype=torch.float64) * 2 - 1
        xt = torch.randn((2, 4, 16, 16), generator=g, dtype=torch.float64)
        seen = []

        def eps_fn(x, t):
            seen.append(t)
            return (x - ac[t].sqrt() * x0) / (1 - ac[t]).sqrt()

        out = unet.ddim_sample(eps_fn, xt, 20, self.cfg)
        t0 = seen[0]
        eps = (xt - ac[t0].sqrt() * x0) / (1 - ac[t0]).sqrt()
        want = ac[0].sqrt() * x0 + (1 - ac[0]).sqrt() * eps
        self.assertEqual(seen, [951 - 50 * k for k in range(20)])
        self.assertTrue(torch.allclose(out, want, atol=1e-9))
        self.assertLess(float((out - x0).pow(2).mean()), 1e-3)

    def test_cfg_combine(self):
        u, c = torch.tensor([1.0, -2.0]), torch.tensor([3.0, 0.5])
        self.assertTrue(torch.equal(unet.cfg_combine(u, c, 0.0), u))
        self.assertTrue(torch.equal(unet.cfg_combine(u, c, 1.0), c))
        self.assertTrue(torch.allclose(unet.cfg_combine(u, c, 7.5), u + 7.5 * (c - u)))


class Training(unittest.TestCase):
    def test_vae_shapes(self):
        m = vae.AutoencoderKL(vae.vae_config())
        imgs = np.stack([draw('circle', (230, 40, 40)), draw('square', (40, 80, 230))])
        x = vae.to_tensor(imgs)
        self.assertTrue(np.array_equal(vae.to_uint8(x), imgs))
        with torch.no_grad():
            mean, logvar = m.encode(x)
            y = m.decode(mean)
        self.assertEqual(tuple(mean.shape), (2, 4, 16, 16))
        self.assertEqual(tuple(logvar.shape), (2, 4, 16, 16))
        self.assertEqual(tuple(y.shape), (2, 3, 64, 64))

    def test_resume_is_exact(self):
        """A run killed right after its step-3 checkpoint and resumed ends bit-identical (EMA
        included) to an uninterrupted run; a finished checkpoint is returned as is."""
        imgs = np.stack([draw('circle', (230, 40, 40)), draw('square', (40, 80, 230))])
        cond, uncond = np.random.default_rng(0).normal(size=(2, 4, 16)), np.zeros((4, 16))
        cfg = unet.unet_config(16, block_out_channels=(16, 32), heads=2, norm_num_groups=4, sample_size=8)

        def run(ck):
            return t2i.train_unet(BoxAE(), imgs, cond, uncond, 6, 1, 5, ckpt=ck, config=cfg, batch=4,
                                  log=lambda *_: None)

        class Killed(Exception):
            pass

        def save_then_die(*args):
            save(*args)
            raise Killed

        every, save = t2i.CKPT_EVERY, t2i._save
        t2i.CKPT_EVERY = 3
        try:
            with tempfile.TemporaryDirectory() as d:
                ck = os.path.join(d, 'unet.pt')
                t2i._save = save_then_die
                with self.assertRaises(Killed):
                    run(ck)
                t2i._save = save
                self.assertEqual(torch.load(ck)['step'], 3)
                a, again = run(ck), run(ck)
        finally:
            t2i.CKPT_EVERY, t2i._save = every, save
        b = run(None)
        for k, v in a.state_dict().items():
            self.assertTrue(torch.equal(v, b.state_dict()[k]), k)
            self.assertTrue(torch.equal(v, again.state_dict()[k]), k)

    def test_overfit_condition_picks_image(self):
        """2 images, 2 random conditions: after a short training, sampling with condition k
        (DDIM + CFG) must give image k."""
        imgs = np.stack([draw('circle', (230, 40, 40)), draw('square', (40, 80, 230))])
        g = torch.Generator().manual_seed(1)
        cond = torch.randn(2, 4, 16, generator=g).numpy()
        uncond = np.zeros((4, 16), np.float32)
        cfg = unet.unet_config(16, block_out_channels=(16, 32), heads=2, norm_num_groups=4, sample_size=8)
        m = t2i.train_unet(BoxAE(), imgs, cond, uncond, 250, 1, 0, config=cfg, batch=16, lr=1e-2,
                           log=lambda *_: None)
        out = t2i.sample(BoxAE(), m, cond[[0, 1, 0, 1]], uncond, steps=10, guidance=2.0, seed=3)
        ref = vae.to_uint8(BoxAE().decode(BoxAE().encode(vae.to_tensor(imgs))[0])).astype(float)
        for i, o in enumerate(out.astype(float)):
            right, wrong = ((o - ref[i % 2]) ** 2).mean(), ((o - ref[1 - i % 2]) ** 2).mean()
            self.assertLess(right, 0.3 * wrong, f'sample {i}: mse {right:.1f} to its image, {wrong:.1f} to the other')

    def test_outproj_fits_targets(self):
        """NExT-GPT's objective: the projector's output for each signal approaches its target
        conditioning (MSE under 1% of the targets' variance)."""
        g = np.random.default_rng(2)
        h, e, y = g.normal(size=(4, 4, 12)), g.normal(size=(4, 12)), g.normal(size=(4, 3, 6))
        cfg = outproj.outproj_config(12, 6, 3, d_model=16, nhead=2, layers=1, dim_feedforward=32)
        m = t2i.train_outproj(h, e, y, 150, 1, 0, config=cfg, batch=4, lr=3e-3, log=lambda *_: None)
        with torch.no_grad():
            out = m(torch.as_tensor(h, dtype=torch.float32), torch.as_tensor(e, dtype=torch.float32)).numpy()
        self.assertLess(((out - y) ** 2).mean(), 0.01 * y.var())

    def test_adherence(self):
        def classify(images):
            return ['red'] * len(images), ['circle', 'square', 'star', 'circle'][:len(images)]
        r = t2i.adherence(np.zeros((4, 64, 64, 3), np.uint8), ['red', 'red', 'blue', 'red'],
                          ['circle', 'circle', 'star', 'circle'], classify)
        self.assertEqual(r, {'n': 4, 'colour': 0.75, 'shape': 0.75, 'both': 0.5})


if __name__ == '__main__':
    unittest.main(verbosity=2)
