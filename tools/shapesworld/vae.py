"""ShapesWorld image autoencoder: a tiny AutoencoderKL with diffusers' module tree and tensor
names (MODELS.md §7.3). 64×64×3 images in [−1, 1] ↔ 16×16×4 latents (two downsamplers, factor 4).

Owns: Encoder / Decoder / AutoencoderKL and the image ↔ tensor conversions. The mid blocks keep
their single-head self-attention (diffusers' `mid_block.attentions.0`); at 16×16 it is cheap.
`scaling_factor` (SD's 0.18215) is measured on training latents by t2i.train_vae and kept in
the config.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from unet import Downsample2D, ResnetBlock2D, Upsample2D


def vae_config(block_out_channels=(16, 32, 64), layers_per_block=1, norm_num_groups=8, latent_channels=4,
               sample_size=64):
    return dict(in_channels=3, out_channels=3, latent_channels=latent_channels,
                block_out_channels=list(block_out_channels), layers_per_block=layers_per_block,
                down_block_types=['DownEncoderBlock2D'] * len(block_out_channels),
                up_block_types=['UpDecoderBlock2D'] * len(block_out_channels),
                norm_num_groups=norm_num_groups, norm_eps=1e-6, act_fn='silu', sample_size=sample_size,
                mid_block_add_attention=True, scaling_factor=1.0)


class VaeAttention(nn.Module):
    """Single-head self-attention over all positions: group_norm → to_q/k/v → to_out.0 → + x."""

    def __init__(self, ch, groups):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, ch, eps=1e-6)
        self.to_q = nn.Linear(ch, ch)
        self.to_k = nn.Linear(ch, ch)
        self.to_v = nn.Linear(ch, ch)
        self.to_out = nn.ModuleList([nn.Linear(ch, ch)])

    def forward(self, x):
        b, c, hh, ww = x.shape
        h = self.group_norm(x).flatten(2).transpose(1, 2)
        w = torch.softmax(self.to_q(h) @ self.to_k(h).transpose(1, 2) / c ** 0.5, dim=-1)
        h = self.to_out[0](w @ self.to_v(h))
        return h.transpose(1, 2).reshape(b, c, hh, ww) + x


class UNetMidBlock2D(nn.Module):
    def __init__(self, ch, groups, eps):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, None, groups, eps) for _ in range(2)])
        self.attentions = nn.ModuleList([VaeAttention(ch, groups)])

    def forward(self, h):
        return self.resnets[1](self.attentions[0](self.resnets[0](h)))


class EncoderBlock(nn.Module):
    """DownEncoderBlock2D: resnets, then (except the last block) an asymmetric-pad downsampler."""

    def __init__(self, cin, cout, n, groups, eps, down):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin if i == 0 else cout, cout, None, groups, eps)
                                      for i in range(n)])
        self.downsamplers = nn.ModuleList([Downsample2D(cout, asymmetric=True)]) if down else None

    def forward(self, h):
        for r in self.resnets:
            h = r(h)
        return self.downsamplers[0](h) if self.downsamplers is not None else h


class DecoderBlock(nn.Module):
    """UpDecoderBlock2D: layers_per_block + 1 resnets, then (except the last) an upsampler."""

    def __init__(self, cin, cout, n, groups, eps, up):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin if i == 0 else cout, cout, None, groups, eps)
                                      for i in range(n)])
        self.upsamplers = nn.ModuleList([Upsample2D(cout)]) if up else None

    def forward(self, h):
        for r in self.resnets:
            h = r(h)
        return self.upsamplers[0](h) if self.upsamplers is not None else h


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        boc, g, eps = c['block_out_channels'], c['norm_num_groups'], c['norm_eps']
        self.conv_in = nn.Conv2d(c['in_channels'], boc[0], 3, padding=1)
        self.down_blocks = nn.ModuleList([
            EncoderBlock(boc[max(i - 1, 0)], boc[i], c['layers_per_block'], g, eps, i < len(boc) - 1)
            for i in range(len(boc))])
        self.mid_block = UNetMidBlock2D(boc[-1], g, eps)
        self.conv_norm_out = nn.GroupNorm(g, boc[-1], eps=eps)
        # 2× latent channels: mean and log-variance (double_z).
        self.conv_out = nn.Conv2d(boc[-1], 2 * c['latent_channels'], 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for blk in self.down_blocks:
            h = blk(h)
        return self.conv_out(F.silu(self.conv_norm_out(self.mid_block(h))))


class Decoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        rev, g, eps = c['block_out_channels'][::-1], c['norm_num_groups'], c['norm_eps']
        self.conv_in = nn.Conv2d(c['latent_channels'], rev[0], 3, padding=1)
        self.mid_block = UNetMidBlock2D(rev[0], g, eps)
        self.up_blocks = nn.ModuleList([
            DecoderBlock(rev[max(i - 1, 0)], rev[i], c['layers_per_block'] + 1, g, eps, i < len(rev) - 1)
            for i in range(len(rev))])
        self.conv_norm_out = nn.GroupNorm(g, rev[-1], eps=eps)
        self.conv_out = nn.Conv2d(rev[-1], c['out_channels'], 3, padding=1)

    def forward(self, z):
        h = self.mid_block(self.conv_in(z))
        for blk in self.up_blocks:
            h = blk(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class AutoencoderKL(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = dict(config)
        lc = config['latent_channels']
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.quant_conv = nn.Conv2d(2 * lc, 2 * lc, 1)
        self.post_quant_conv = nn.Conv2d(lc, lc, 1)

    def encode(self, x):
        """x [B,3,H,W] in [−1,1] → (mean, logvar) [B,4,H/4,W/4] (unscaled latents)."""
        mean, logvar = self.quant_conv(self.encoder(x)).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z):
        """Unscaled latents → image [B,3,H,W] in about [−1,1]."""
        return self.decoder(self.post_quant_conv(z))


def to_tensor(images):
    """uint8 [n,H,W,3] (numpy or torch) → float [n,3,H,W] in [−1,1]."""
    x = torch.as_tensor(np.asarray(images)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


def to_uint8(x):
    """float [n,3,H,W] in [−1,1] → uint8 numpy [n,H,W,3]."""
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().numpy()
