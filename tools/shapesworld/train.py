#!/usr/bin/python3
"""Trains the ShapesWorld pack from nothing, on this machine's CPUs (docs/DEMO.md).

  train.py WORK_DIR [--seed 0] [--threads 2] [--scale 1.0] [--pack OUT_DIR] [--until STAGE]

Stages, in order (each writes WORK_DIR/STAGE.done with its wall time; a rerun skips finished
stages and resumes an interrupted one from its last checkpoint):
  data   training clips/images (data.py)            vocab  SentencePiece vocabulary (vocab.py)
  clip   ViT + CLIP text tower (stages.py)           cache  frozen ViT features
  frames the frame Q-Former, then its cached tokens  video  video Q-Former, video head, text tower
  text   the text tower learns IMU captions          audio_imu  ImageBind audio + IMU towers
  qa     the LLM, llama_proj and the audio/IMU input projections on the frozen encoders' outputs
  t2i    VAE, UNet, output projector (stages_out.py) export the pack (export.py)
--scale multiplies data sizes and step counts (0.05 makes a smoke run of a few minutes).
Everything is a function of --seed; results differ in the last bits between runs only through
thread scheduling in PyTorch's reductions.
"""
import argparse
import json
import os
import resource
import sys
import time

import blas  # noqa: F401  (first: OpenBLAS reads its thread count when it loads)
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data  # noqa: E402
import export  # noqa: E402
import models  # noqa: E402
import stages  # noqa: E402
import stages_out  # noqa: E402
import vocab  # noqa: E402

STAGES = ['data', 'vocab', 'clip', 'cache', 'frames', 'video', 'text', 'audio_imu', 'qa', 't2i', 'export']
FULL = dict(n_clips=10000, n_t2i=4000, sup_steps=1500, sup_batch=64, clip_steps=400, clip_batch=96,
            frame_steps=2000, frame_batch=128,
            video_steps=5000, video_batch=48, qa_steps=4000, qa_batch=32, text_steps=300,
            n_audio=10000, n_audio_scenes=20000, n_imu=3000, audio_steps=5000, imu_steps=600,
            vae_steps=6000, unet_steps=3000, proj_steps=600)
ACTIVITY_TEXTS = ['a person standing still', 'a person walking slowly', 'a person walking fast',
                  'a person running fast', 'a person jumping', 'a person turning left while walking',
                  'a person turning right while walking', 'a person climbing stairs']


class Run:
    def __init__(self, a):
        self.a, self.work = a, a.work
        s = a.scale
        self.cfg = {k: max(2, int(round(v * s))) if not k.endswith('batch') else v for k, v in FULL.items()}
        os.makedirs(os.path.join(self.work, 'ckpt'), exist_ok=True)
        self.datadir = os.path.join(self.work, 'data')
        self.sp_prefix = os.path.join(self.work, 'vocab')

    def done(self, stage):
        return os.path.exists(os.path.join(self.work, stage + '.done'))

    def mark(self, stage, seconds, cpu):
        with open(os.path.join(self.work, stage + '.done'), 'w') as f:
            json.dump(dict(seconds=round(seconds, 1), cpu_seconds=round(cpu, 1), cfg=self.cfg, seed=self.a.seed), f)
        stages.log('stage %s done in %.1f s wall, %.1f s CPU' % (stage, seconds, cpu))

    def params(self, sp, ckpt=None, groups=None):
        """Fresh parameters, with those of ckpt loaded over them (only the given groups': a
        stage's checkpoint also holds the initial values of what it did not train)."""
        p = models.build(sp.get_piece_size(), self.a.seed)
        if ckpt:
            state = torch.load(os.path.join(self.work, 'ckpt', ckpt))['params']
            p.load({k: v for k, v in state.items() if groups is None or p.group[k] in groups})
        return p

    def run(self, stage):
        a, c = self.a, self.cfg
        if stage == 'data':
            data.build(self.datadir, c['n_clips'], c['n_t2i'], a.seed, a.threads)
            return
        frames, clips, t2i_img, t2i = data.load(self.datadir)
        if stage == 'vocab':
            vocab.train(data.corpus(clips, t2i, ACTIVITY_TEXTS + stages.DESCRIBE, a.seed), self.sp_prefix)
            return
        sp = vocab.load(self.sp_prefix + '.model')
        if stage == 'clip':
            stages.stage_clip(self.params(sp), sp, frames, clips, c['sup_steps'], c['sup_batch'], c['clip_steps'],
                              c['clip_batch'], os.path.join(self.work, 'ckpt', 'clip.pt'), a.seed)
        elif stage == 'cache':
            stages.stage_cache(self.params(sp, 'clip.pt'), frames, self.work)
        elif stage == 'frames':
            feats = np.load(os.path.join(self.work, 'feats.npy'), mmap_mode='r')
            ck = os.path.join(self.work, 'ckpt', 'frames.pt')
            p = self.params(sp, 'frames.pt') if os.path.exists(ck) else self.params(sp, 'clip.pt', ('blip2', 'clip', 'aux'))
            stages.stage_frames(p, feats, clips, c['frame_steps'], c['frame_batch'], ck, a.seed)
            stages.cache_frame_tokens(p.t, feats, os.path.join(self.work, 'frame_tokens.npy'))
        elif stage == 'video':
            ftok = np.load(os.path.join(self.work, 'frame_tokens.npy'), mmap_mode='r')
            pooled = np.load(os.path.join(self.work, 'pooled.npy'))
            if os.path.exists(os.path.join(self.work, 'ckpt', 'video.pt')):
                p = self.params(sp, 'video.pt')
            else:
                p = self.params(sp, 'frames.pt', ('blip2', 'clip', 'aux'))
            stages.stage_video(p, sp, ftok, pooled, clips, c['video_steps'], c['video_batch'],
                               os.path.join(self.work, 'ckpt', 'video.pt'), a.seed)
        elif stage == 'text':
            feats = np.load(os.path.join(self.work, 'feats.npy'), mmap_mode='r')
            pooled = np.load(os.path.join(self.work, 'pooled.npy'))
            p = self.params(sp, 'video.pt')
            stages_out.stage_text(p, sp, feats, pooled, clips, c['text_steps'], a.seed)
            torch.save({'params': {k: v.detach() for k, v in p.t.items()}}, os.path.join(self.work, 'ckpt', 'text.pt'))
        elif stage == 'audio_imu':
            feats = np.load(os.path.join(self.work, 'feats.npy'), mmap_mode='r')
            stages_out.stage_audio_imu(self.params(sp, 'text.pt').t, sp, feats, clips, c['n_audio'],
                                       c['n_audio_scenes'], c['n_imu'], c['audio_steps'], c['imu_steps'],
                                       os.path.join(self.work, 'ckpt'), a.seed, a.threads)
        elif stage == 'qa':
            ftok = np.load(os.path.join(self.work, 'frame_tokens.npy'), mmap_mode='r')
            p = self.params(sp, 'qa.pt' if os.path.exists(os.path.join(self.work, 'ckpt', 'qa.pt')) else 'text.pt')
            av = stages_out.av_sets(*stages_out.load_audio_imu(os.path.join(self.work, 'ckpt')), clips[:c['n_audio']],
                                    c['n_audio_scenes'], c['n_imu'], a.seed)
            stages.stage_qa(p, sp, ftok, clips, t2i, av, c['qa_steps'], c['qa_batch'],
                            os.path.join(self.work, 'ckpt', 'qa.pt'), a.seed)
        elif stage == 't2i':
            stages_out.stage_t2i(self.params(sp, 'qa.pt').t, sp, t2i_img, t2i, c['vae_steps'], c['unet_steps'],
                                 c['proj_steps'], os.path.join(self.work, 'ckpt'), a.seed, a.threads)
        elif stage == 'export':
            out = a.pack or os.path.join(self.work, 'pack')
            export.export(self.params(sp, 'qa.pt'), sp, self.sp_prefix + '.model', out)
            stages_out.export_out(os.path.join(self.work, 'ckpt'), os.path.join(out, 'hf'))
            stages.log('pack %s: %.1f MB' % (out, export.sizes(out) / 1e6))


def cpu_seconds():
    """CPU time of this process and its finished children (ffmpeg, data workers)."""
    u = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(x.ru_utime + x.ru_stime for x in u)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('work')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--scale', type=float, default=1.0)
    ap.add_argument('--pack', help='where the export stage writes the pack (default WORK/pack)')
    ap.add_argument('--until', choices=STAGES, default=STAGES[-1])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    r = Run(a)
    total = time.time()
    for stage in STAGES[:STAGES.index(a.until) + 1]:
        if r.done(stage):
            continue
        t0, c0 = time.time(), cpu_seconds()
        stages.log('stage %s' % stage)
        r.run(stage)
        r.mark(stage, time.time() - t0, cpu_seconds() - c0)
    stages.log('finished in %.1f s' % (time.time() - total))
    return 0


if __name__ == '__main__':
    sys.exit(main())
