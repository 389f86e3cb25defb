"""ShapesWorld text-to-image denoiser: a tiny UNet2DConditionModel with diffusers' module tree and
tensor names (MODELS.md §7.2), plus the SD noise schedule, DDIM sampling and classifier-free
guidance (§7.5).

Owns: the shared conv building blocks (ResnetBlock2D, Downsample2D, Upsample2D; vae.py reuses
them), the transformer blocks with self- and cross-attention, the UNet itself, and the scheduler
math. Everything is plain PyTorch 1.13; the C side re-implements the same forward from the names.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def unet_config(cross_attention_dim, block_out_channels=(32, 64, 64), layers_per_block=1, heads=4,
                norm_num_groups=8, sample_size=16, latent_channels=4, attn_levels=None):
    """diffusers-style config. `attention_head_dim` holds the number of heads, as in SD 1.5's
    config (diffusers reads that field as the head count). attn_levels: which resolution levels
    get transformers (CrossAttn*Block2D); by default all but the first, because self-attention
    over the full 16×16 latent cost most of a training step on CPU."""
    n = len(block_out_channels)
    attn = [i > 0 for i in range(n)] if attn_levels is None else [i in attn_levels for i in range(n)]
    return dict(sample_size=sample_size, in_channels=latent_channels, out_channels=latent_channels,
                block_out_channels=list(block_out_channels), layers_per_block=layers_per_block,
                down_block_types=['CrossAttnDownBlock2D' if a else 'DownBlock2D' for a in attn],
                mid_block_type='UNetMidBlock2DCrossAttn',
                up_block_types=['CrossAttnUpBlock2D' if a else 'UpBlock2D' for a in attn[::-1]],
                cross_attention_dim=cross_attention_dim, attention_head_dim=heads,
                norm_num_groups=norm_num_groups, norm_eps=1e-5, flip_sin_to_cos=True, freq_shift=0,
                use_linear_projection=False, num_train_timesteps=1000, beta_start=0.00085,
                beta_end=0.012, beta_schedule='scaled_linear', prediction_type='epsilon',
                steps_offset=1, set_alpha_to_one=False)


class ResnetBlock2D(nn.Module):
    """GN → SiLU → conv1 (+ time_emb_proj(SiLU(temb))) → GN → SiLU → conv2, plus a 1×1
    conv_shortcut when the width changes. temb_channels None = the VAE's variant."""

    def __init__(self, cin, cout, temb_channels, groups, eps):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_channels, cout) if temb_channels else None
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_emb_proj is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h


class Downsample2D(nn.Module):
    """3×3 stride-2 conv. The UNet pads 1 on every side; the VAE encoder (asymmetric=True) pads
    only right and bottom, then convolves without padding, as AutoencoderKL does."""

    def __init__(self, ch, asymmetric=False):
        super().__init__()
        self.asymmetric = asymmetric
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=0 if asymmetric else 1)

    def forward(self, x):
        if self.asymmetric:
            x = F.pad(x, (0, 1, 0, 1))
        return self.conv(x)


class Upsample2D(nn.Module):
    """Nearest ×2, then a 3×3 conv."""

    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode='nearest'))


def attention(q, k, v, heads):
    """softmax(q·kᵀ/√hd)·v per head; q [B,N,C], k/v [B,M,C] → [B,N,C]."""
    b, n, c = q.shape
    hd = c // heads
    q = q.reshape(b, n, heads, hd).transpose(1, 2)
    k = k.reshape(b, k.shape[1], heads, hd).transpose(1, 2)
    v = v.reshape(b, v.shape[1], heads, hd).transpose(1, 2)
    w = torch.softmax((q / math.sqrt(hd)) @ k.transpose(-1, -2), dim=-1)
    return (w @ v).transpose(1, 2).reshape(b, n, c)


class Attention(nn.Module):
    """diffusers Attention: to_q/to_k/to_v (bias only in the VAE), to_out.0 with bias."""

    def __init__(self, dim, heads, context_dim=None, bias=False):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=bias)
        self.to_k = nn.Linear(context_dim or dim, dim, bias=bias)
        self.to_v = nn.Linear(context_dim or dim, dim, bias=bias)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])

    def forward(self, x, context=None):
        ctx = x if context is None else context
        return self.to_out[0](attention(self.to_q(x), self.to_k(ctx), self.to_v(ctx), self.heads))


class GEGLU(nn.Module):
    """proj (C → 8C), split into halves (a, g), a·GELU(g)."""

    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x):
        a, g = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(g)


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        # Index 1 is diffusers' dropout slot; an Identity keeps the output Linear at net.2.
        self.net = nn.ModuleList([GEGLU(dim, 4 * dim), nn.Identity(), nn.Linear(4 * dim, dim)])

    def forward(self, x):
        for m in self.net:
            x = m(x)
        return x


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, heads, context_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, heads, context_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, h, context):
        h = h + self.attn1(self.norm1(h))
        h = h + self.attn2(self.norm2(h), context)
        return h + self.ff(self.norm3(h))


class Transformer2DModel(nn.Module):
    """SD 1.5 flavour: GN(eps 1e-6) → 1×1 conv proj_in → tokens → one block → proj_out → + x."""

    def __init__(self, ch, heads, context_dim, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, ch, eps=1e-6)
        self.proj_in = nn.Conv2d(ch, ch, 1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(ch, heads, context_dim)])
        self.proj_out = nn.Conv2d(ch, ch, 1)

    def forward(self, x, context):
        b, c, hh, ww = x.shape
        h = self.proj_in(self.norm(x)).flatten(2).transpose(1, 2)
        for blk in self.transformer_blocks:
            h = blk(h, context)
        return self.proj_out(h.transpose(1, 2).reshape(b, c, hh, ww)) + x


class DownBlock(nn.Module):
    """CrossAttnDownBlock2D (attn=True: a transformer after each resnet) or DownBlock2D."""

    def __init__(self, cin, cout, n, temb, heads, ctx, groups, eps, down, attn):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin if i == 0 else cout, cout, temb, groups, eps)
                                      for i in range(n)])
        self.attentions = (nn.ModuleList([Transformer2DModel(cout, heads, ctx, groups) for _ in range(n)])
                           if attn else None)
        self.downsamplers = nn.ModuleList([Downsample2D(cout)]) if down else None

    def forward(self, h, temb, context, skips):
        for i, res in enumerate(self.resnets):
            h = res(h, temb)
            if self.attentions is not None:
                h = self.attentions[i](h, context)
            skips.append(h)
        if self.downsamplers is not None:
            h = self.downsamplers[0](h)
            skips.append(h)
        return h


class UpBlock(nn.Module):
    """CrossAttnUpBlock2D or UpBlock2D; each resnet consumes concat(h, skips.pop())."""

    def __init__(self, in_ch, prev_ch, cout, n, temb, heads, ctx, groups, eps, up, attn):
        super().__init__()
        # diffusers' channel rule: resnet j sees the running width (prev block's output for j=0)
        # concatenated with a skip whose width is the down path's at that point.
        self.resnets = nn.ModuleList([
            ResnetBlock2D((prev_ch if j == 0 else cout) + (in_ch if j == n - 1 else cout), cout,
                          temb, groups, eps) for j in range(n)])
        self.attentions = (nn.ModuleList([Transformer2DModel(cout, heads, ctx, groups) for _ in range(n)])
                           if attn else None)
        self.upsamplers = nn.ModuleList([Upsample2D(cout)]) if up else None

    def forward(self, h, temb, context, skips):
        for i, res in enumerate(self.resnets):
            h = res(torch.cat([h, skips.pop()], dim=1), temb)
            if self.attentions is not None:
                h = self.attentions[i](h, context)
        if self.upsamplers is not None:
            h = self.upsamplers[0](h)
        return h


class UNetMidBlock2DCrossAttn(nn.Module):
    def __init__(self, ch, temb, heads, ctx, groups, eps):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, temb, groups, eps) for _ in range(2)])
        self.attentions = nn.ModuleList([Transformer2DModel(ch, heads, ctx, groups)])

    def forward(self, h, temb, context):
        h = self.resnets[0](h, temb)
        return self.resnets[1](self.attentions[0](h, context), temb)


def timestep_embedding(t, dim, flip_sin_to_cos=True, shift=0):
    """diffusers get_timestep_embedding: f_i = exp(−ln(10000)·i/(dim/2 − shift)); [cos, sin]
    when flipped (SD), [sin, cos] otherwise."""
    half = dim // 2
    f = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / (half - shift))
    a = t.float()[:, None] * f[None]
    return torch.cat([a.cos(), a.sin()] if flip_sin_to_cos else [a.sin(), a.cos()], dim=-1)


class UNet2DConditionModel(nn.Module):
    """ε-prediction UNet: forward(sample [B,4,h,w], timestep [B], context [B,L,Dc]) → [B,4,h,w]."""

    def __init__(self, config):
        super().__init__()
        self.config = dict(config)
        c = self.config
        boc, n, g, eps = c['block_out_channels'], c['layers_per_block'], c['norm_num_groups'], c['norm_eps']
        heads, ctx = c['attention_head_dim'], c['cross_attention_dim']
        temb = 4 * boc[0]
        self.conv_in = nn.Conv2d(c['in_channels'], boc[0], 3, padding=1)
        self.time_embedding = nn.Module()
        self.time_embedding.linear_1 = nn.Linear(boc[0], temb)
        self.time_embedding.linear_2 = nn.Linear(temb, temb)
        self.down_blocks = nn.ModuleList([
            DownBlock(boc[max(i - 1, 0)], boc[i], n, temb, heads, ctx, g, eps, i < len(boc) - 1,
                      c['down_block_types'][i].startswith('CrossAttn'))
            for i in range(len(boc))])
        self.mid_block = UNetMidBlock2DCrossAttn(boc[-1], temb, heads, ctx, g, eps)
        rev = boc[::-1]
        self.up_blocks = nn.ModuleList([
            UpBlock(rev[min(i + 1, len(rev) - 1)], rev[max(i - 1, 0)], rev[i], n + 1, temb, heads, ctx, g, eps,
                    i < len(rev) - 1, c['up_block_types'][i].startswith('CrossAttn'))
            for i in range(len(rev))])
        self.conv_norm_out = nn.GroupNorm(g, boc[0], eps=eps)
        self.conv_out = nn.Conv2d(boc[0], c['out_channels'], 3, padding=1)

    def forward(self, sample, timestep, context):
        c = self.config
        e = timestep_embedding(timestep, c['block_out_channels'][0], c['flip_sin_to_cos'], c['freq_shift'])
        temb = self.time_embedding.linear_2(F.silu(self.time_embedding.linear_1(e)))
        h = self.conv_in(sample)
        skips = [h]
        for blk in self.down_blocks:
            h = blk(h, temb, context, skips)
        h = self.mid_block(h, temb, context)
        for blk in self.up_blocks:
            h = blk(h, temb, context, skips)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


def alphas_cumprod(config):
    """ᾱ_t for SD's scaled-linear schedule: β_t = (√β0 + t/(T−1)·(√β1 − √β0))², in float64."""
    t = config['num_train_timesteps']
    betas = torch.linspace(config['beta_start'] ** 0.5, config['beta_end'] ** 0.5, t, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def add_noise(x0, noise, t, ac):
    """q(x_t | x0) = √ᾱ_t·x0 + √(1−ᾱ_t)·ε for per-sample timesteps t [B]."""
    a = ac[t].to(x0.dtype)[:, None, None, None]
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def ddim_timesteps(steps, config):
    """'leading' spacing with steps_offset: (N−1..0)·(T//N) + offset."""
    r = config['num_train_timesteps'] // steps
    return [(steps - 1 - k) * r + config['steps_offset'] for k in range(steps)]


def ddim_step(x, eps, t, t_prev, ac, final_alpha):
    """Deterministic DDIM (η = 0): x̂0 = (x − √(1−ᾱ_t)·ε)/√ᾱ_t;
    x_prev = √ᾱ_prev·x̂0 + √(1−ᾱ_prev)·ε;
    ᾱ_prev = final_alpha once t_prev < 0."""
    a_t = float(ac[t])
    a_p = float(ac[t_prev]) if t_prev >= 0 else final_alpha
    x0 = (x - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
    return math.sqrt(a_p) * x0 + math.sqrt(1 - a_p) * eps


def cfg_combine(eps_uncond, eps_cond, scale):
    """Classifier-free guidance: ε = ε_u + s·(ε_c − ε_u)."""
    return eps_uncond + scale * (eps_cond - eps_uncond)


def ddim_sample(eps_fn, x, steps, config):
    """Runs DDIM from x = x_T with eps_fn(x, t) → ε; returns x at the final step."""
    ac = alphas_cumprod(config)
    final_alpha = 1.0 if config['set_alpha_to_one'] else float(ac[0])
    ts = ddim_timesteps(steps, config)
    r = config['num_train_timesteps'] // steps
    for t in ts:
        x = ddim_step(x, eps_fn(x, t), t, t - r, ac, final_alpha)
    return x
