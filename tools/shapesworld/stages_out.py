"""Training stages after the vision-language model, each into the frozen joint space or onto
the frozen LLM (ImageBind's and NExT-GPT's recipes):

  audio_imu  ImageBind-style audio and IMU towers (bindenc.py): the sound of a training clip
             (sound.py) towards that clip's frozen video embedding, the sound of a scene no
             clip shows towards its caption's frozen text embedding; an IMU trace (imu.py)
             towards the frozen text embedding of its caption.
  t2i        the image decoder (vae.py, unet.py: a latent diffusion model conditioned on the
             frozen CLIP text tower's last hidden states of the caption), then NExT-GPT's output
             projector (outproj.py) from the LLM's signal-token states to that conditioning.
"""
import numpy as np
import torch

import bindenc
import export
import imu
import infer
import models
import sound
import stages
import t2i as t2i_lib
import vocab
import world
from outproj import TextFcLayer
from unet import UNet2DConditionModel
from vae import AutoencoderKL

COND_LEN = 8                 # conditioning rows: BOS, the caption's pieces, EOS, padding


@torch.no_grad()
def video_embeddings(w, feats, chunk=256):
    out = []
    for lo in range(0, feats.shape[0], chunk):
        f = torch.from_numpy(np.asarray(feats[lo:lo + chunk], dtype=np.float32))
        out.append(models.video_head(w, models.encode_video(w, f)).numpy())
    return np.concatenate(out)


@torch.no_grad()
def text_embeddings(w, sp, texts):
    return stages.text_embed(w, sp, texts).numpy()


def imu_set(split, n, seed):
    traces, caps = [], []
    for i in range(n):
        tr, cap = imu.sample_imu(world.split_rng(split, 2_000_000 + i, seed))
        traces.append(tr)
        caps.append(cap)
    return np.stack(traces), caps


IMU_PHRASES = ['{}', 'a person {}', 'someone {}', 'the wearer is {}']


def stage_text(p, sp, feats, pooled, clips, steps, seed, batch=64):
    """The text tower learns the IMU captions' words (it has only read scenes so far, and
    gives all activities nearly the same embedding): phrasings of one activity are positives,
    other activities negatives, while scene and frame captions stay on their frozen video and
    image embeddings. Only the text tower and its projection move."""
    w = p.t
    for k, v in w.items():
        v.requires_grad_(k.startswith('text_model.') or k == 'text_projection.weight')
    train = [v for v in w.values() if v.requires_grad]
    rng = np.random.default_rng([seed, 5])
    n = len(clips)
    with torch.no_grad():
        vemb = torch.from_numpy(video_embeddings(w, feats[:min(n, 4000)]))
    opt = torch.optim.AdamW(train, lr=3e-4, weight_decay=0.01)
    scale = torch.tensor(np.log(1 / 0.07))
    for step in range(steps):
        caps = imu.IMU_CAPTIONS
        a = [IMU_PHRASES[int(rng.integers(len(IMU_PHRASES)))].format(c) for c in caps]
        b = [IMU_PHRASES[int(rng.integers(len(IMU_PHRASES)))].format(c) for c in caps]
        l_imu = stages.contrastive(stages.text_embed(w, sp, a), stages.text_embed(w, sp, b), caps, scale)
        vid = rng.integers(len(vemb), size=batch)
        vcaps = [world.caption(clips[i]['scene']) for i in vid]
        l_vid = stages.contrastive(vemb[vid], stages.text_embed(w, sp, vcaps), vcaps, w['video_logit_scale'])
        # the image side and both logit scales do not train here (requires_grad off above)
        l_img = stages.frame_contrastive(w, sp, pooled, clips, rng, batch)
        loss = l_imu + l_vid + l_img
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            stages.log('text %d/%d loss %.3f (imu captions %.3f video %.3f frame %.3f)' %
                       (step, steps, loss.item(), l_imu.item(), l_vid.item(), l_img.item()))
    for v in w.values():
        v.requires_grad_(True)


# train-split item numbers of the heard-only scenes, clear of the clips' (below 1e6), the
# text-to-image pictures' (1e6 + i) and the IMU traces' (2e6 + i)
AUDIO_SCENE_BASE = 5_000_000


def audio_scenes(n, seed):
    """n training scenes that are heard but never rendered: their sound is cheap and no clip
    shows them. The audio tower, trained on the 10000 clips' scenes alone, retrieved clips of
    captions it had heard at 0.93 and of new ones at 0.83."""
    return [world.sample_scene(world.split_rng('train', AUDIO_SCENE_BASE + i, seed)) for i in range(n)]


def training_sounds(clips, n_scenes, seed, renditions=1):
    """The scenes and wave seeds of the sounds the audio tower trains on: the first renditions
    of each clip's sound (other phases, pitch jitter, noise), then the n_scenes heard-only
    scenes'."""
    scenes = [c['scene'] for _ in range(renditions) for c in clips] + audio_scenes(n_scenes, seed)
    seeds = ([c['i'] + r * 1_000_000 for r in range(renditions) for c in clips]
             + [AUDIO_SCENE_BASE + i for i in range(n_scenes)])
    return scenes, seeds


def stage_audio_imu(w, sp, feats, clips, n_audio, n_scenes, n_imu, audio_steps, imu_steps, ckpt_dir, seed,
                    threads):
    """Audio towards the frozen video embedding of the clip it belongs to (two renditions of
    each clip's sound), and, for the n_scenes heard-only scenes, towards the frozen text
    embedding of the scene's caption, which the video embeddings of clips with that caption lie
    next to (ImageBind aligns audio with images; the text side of the same space stands in
    where there is no image)."""
    n = min(n_audio, len(clips))
    scenes, seeds = training_sounds(clips[:n], n_scenes, seed, renditions=2)
    waves = [sound.scene_audio(s, seed=k) for s, k in zip(scenes, seeds)]
    keys = [world.caption(s) for s in scenes]
    vemb = video_embeddings(w, feats[:n])
    targets = [vemb, vemb]
    if n_scenes:
        targets.append(text_embeddings(w, sp, keys[2 * n:]))
    audio = bindenc.train_audio(waves, np.concatenate(targets), keys, threads, seed, audio_steps,
                                ckpt_dir + '/audio.pt', log=stages.log)
    traces, caps = imu_set('train', n_imu, seed)
    imu_model = bindenc.train_imu(traces, text_embeddings(w, sp, caps), caps, threads, seed, imu_steps,
                                  ckpt_dir + '/imu.pt', log=stages.log)
    torch.save({'audio': (bindenc.config(audio), audio.state_dict()),
                'imu': (bindenc.config(imu_model), imu_model.state_dict())}, ckpt_dir + '/audio_imu_final.pt')


EVAL_SOUND_BASE = 10_000_000      # held-out sounds' seeds: clear of every training rendition's


def embed_sounds(audio, scenes, seeds):
    """Joint-space embeddings [n, JOINT] of the scenes' sounds, rendered with the given seeds
    one at a time (30000 waves at once would take 4 GB)."""
    return torch.from_numpy(bindenc.embed_audio(audio, (sound.scene_audio(s, seed=k) for s, k in zip(scenes, seeds))))


@torch.no_grad()
def av_sets(audio, imu_model, clips, n_scenes, n_imu, seed, n_probe=200):
    """What stage qa teaches the LLM to read, through the frozen towers: the sounds the audio
    tower trained on (each clip's first rendition and the heard-only scenes), n_imu training
    IMU traces, and n_probe held-out ones of each for its probe."""
    scenes, seeds = training_sounds(clips, n_scenes, seed)
    held = [world.sample_scene(world.split_rng('heldout', i, seed)) for i in range(n_probe)]
    traces, caps = imu_set('train', n_imu, seed)
    held_traces, held_caps = imu_set('heldout', n_probe, seed)
    return {'audio': embed_sounds(audio, scenes, seeds), 'audio_scenes': scenes,
            'imu': torch.from_numpy(bindenc.embed_imu(imu_model, traces)), 'imu_caps': caps,
            'probe_audio': embed_sounds(audio, held, [EVAL_SOUND_BASE + i for i in range(n_probe)]),
            'probe_scenes': held, 'probe_imu': torch.from_numpy(bindenc.embed_imu(imu_model, held_traces)),
            'probe_imu_caps': held_caps}


def load_audio_imu(ckpt_dir):
    s = torch.load(ckpt_dir + '/audio_imu_final.pt')
    return bindenc.build(*s['audio']).eval(), bindenc.build(*s['imu']).eval()


@torch.no_grad()
def cond_of(w, sp, captions):
    """The UNet's conditioning: the text tower's final-LN states [n, COND_LEN, D]."""
    ids, eos = stages.text_batch(sp, captions, COND_LEN)
    return models.text_tower(w, ids, eos)[0].numpy()


@torch.no_grad()
def signal_states(w, sp, prompts):
    """Final-norm hidden states [n, 4, E] at the four signal tokens when the LLM reads
    prompt + [IMG0..IMG3] (the rows omnid's LLM captures while it emits them)."""
    sig = vocab.signal_ids(sp)
    out = []
    for p in prompts:
        ids = vocab.prompt_ids(sp, p) + sig
        _, h = models.llm_forward(w, models.embed_tokens(w, torch.tensor([ids])), hidden=True)
        out.append(h[0, -4:].numpy())
    return np.stack(out), models.embed_tokens(w, torch.tensor(sig)).numpy()


def stage_t2i(w, sp, t2i_img, t2i, vae_steps, unet_steps, proj_steps, ckpt_dir, seed, threads):
    caps = [r['caption'] for r in t2i]
    vae = t2i_lib.train_vae(t2i_img, vae_steps, threads, seed, ckpt_dir + '/vae.pt', log=stages.log)
    cond = cond_of(w, sp, caps)
    uncond = cond_of(w, sp, [''])[0]
    unet = t2i_lib.train_unet(vae, t2i_img, cond, uncond, unet_steps, threads, seed, ckpt_dir + '/unet.pt',
                              log=stages.log)
    sh, se = signal_states(w, sp, [r['prompt'] for r in t2i])
    proj = t2i_lib.train_outproj(sh, se, cond, proj_steps, threads, seed, ckpt_dir + '/outproj.pt', log=stages.log)
    torch.save({'models': t2i_lib.state_dicts(vae, unet, proj), 'uncond': uncond}, ckpt_dir + '/t2i_final.pt')


T2I_CLASSES = {'vae': AutoencoderKL, 'unet': UNet2DConditionModel, 'outproj': TextFcLayer}


def load_t2i(ckpt_dir):
    """(vae, unet, projector, unconditional conditioning) as stage t2i left them."""
    s = torch.load(ckpt_dir + '/t2i_final.pt')
    out = []
    for name in ('vae', 'unet', 'outproj'):
        m = T2I_CLASSES[name](s['models'][name]['config'])
        m.load_state_dict({k: torch.from_numpy(v) for k, v in s['models'][name]['tensors'].items()})
        out.append(m.eval())
    return out + [s['uncond']]


def export_out(ckpt_dir, hf):
    """The audio/IMU towers (ImageBind names) and the image decoder (diffusers / NExT-GPT
    names) as safetensors + config.json under hf/: omnid has no loader for them yet."""
    audio, imu_model = load_audio_imu(ckpt_dir)
    for name, m in (('imagebind_audio', audio), ('imagebind_imu', imu_model)):
        export.write_hf(hf + '/' + name, bindenc.state_dict_imagebind(m), bindenc.config(m))
    s = torch.load(ckpt_dir + '/t2i_final.pt')
    for name, d in s['models'].items():
        export.write_hf(hf + '/' + {'vae': 'vae', 'unet': 'unet', 'outproj': 'output_projector'}[name],
                        d['tensors'], d['config'])


# ---------------------------------------------------------------- evaluation (eval.py)

def classifier(w, sp):
    """Zero-shot colour+shape judge: the trained ViT's image embedding against the text
    embeddings of "a {colour} {shape}" for every pair."""
    pairs = [(c, s) for c in world.COLOURS for s in world.SHAPES]
    temb = torch.from_numpy(text_embeddings(w, sp, ['a %s %s' % p for p in pairs]))

    @torch.no_grad()
    def classify(images):
        pooled, _ = models.vit(w, models.normalize_pixels(torch.from_numpy(np.ascontiguousarray(images))))
        best = (models.image_embed(w, pooled) @ temb.T).argmax(1).numpy()
        return [pairs[i][0] for i in best], [pairs[i][1] for i in best]
    return classify


def eval_t2i(w, sp, vae, unet, proj, uncond, n, seed):
    """Held-out requests -> LLM (greedy: must emit the four signal tokens) -> projector ->
    diffusion -> judged zero-shot; plus the judge's own accuracy on rendered images."""
    sig = vocab.signal_ids(sp)
    prompts, want, real = [], [], []
    for i in range(n):
        rng = world.split_rng('heldout', 3_000_000 + i, seed)
        prompt, cap, scene = world.t2i_sample(rng)
        prompts.append(prompt)
        want.append(cap.split()[1:])
        real.append(world.render_clip(scene, 64, 64, 'pil', True)[0])
    emitted = [infer.generate(w, sp, vocab.prompt_ids(sp, p), max_new=6) == sig for p in prompts]
    sh, se = signal_states(w, sp, prompts)
    with torch.no_grad():
        cond = proj(torch.from_numpy(sh), torch.from_numpy(se)).numpy()
    images = t2i_lib.sample(vae, unet, cond, uncond, seed=seed)
    judge = classifier(w, sp)
    colours, shapes = [x[0] for x in want], [x[1] for x in want]
    return {'n': n, 'signal_tokens_emitted': float(np.mean(emitted)),
            'adherence': t2i_lib.adherence(images, colours, shapes, judge),
            'judge_on_rendered': t2i_lib.adherence(np.stack(real), colours, shapes, judge)}, images


def eval_audio_imu(w, sp, audio, imu_model, items, video_emb, n_imu, seed):
    """Retrieval R@1 audio<->video and IMU<->text on held-out sounds of items and n_imu held-out
    IMU traces; also returns those embeddings and the traces' captions."""
    a = embed_sounds(audio, [it['scene'] for it in items], [EVAL_SOUND_BASE + k for k in range(len(items))]).numpy()
    keys = [it['caption'] for it in items]
    traces, caps = imu_set('heldout', n_imu, seed)
    e = bindenc.embed_imu(imu_model, traces)
    gallery = sorted(set(imu.IMU_CAPTIONS))
    t = text_embeddings(w, sp, gallery)
    return {'r1_audio_to_video': bindenc.recall_at_1(a, video_emb, keys, keys),
            'r1_video_to_audio': bindenc.recall_at_1(video_emb, a, keys, keys),
            'r1_imu_to_text': bindenc.recall_at_1(e, t, caps, gallery),
            'r1_text_to_imu': bindenc.recall_at_1(t, e, gallery, caps),
            'n_audio': len(items), 'n_imu': n_imu, 'n_imu_captions': len(gallery)}, a, e, caps
