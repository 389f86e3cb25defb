#!/usr/bin/python3
"""ShapesWorld sounds, IMU traces and their ImageBind-style encoders (tools/shapesworld/{sound,imu,
bindenc}.py): fbank shape and normalisation, deterministic synthesis, a tiny training problem that
must be learned well above chance, resuming from a checkpoint, and the checkpoint tensor names and
shapes of MODELS.md section 2.4. One torch thread, a few seconds."""
import math
import os
import re
import sys
import tempfile
import unittest

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
sys.path.insert(0, os.path.join(ROOT, 'tools', 'shapesworld'))
import bindenc  # noqa: E402
import imu  # noqa: E402
import sound  # noqa: E402

torch.set_num_threads(1)
QUIET = dict(log=None, threads=1)


def scene(objs, n_frames=16):
    return {'objects': [dict(shape=s, colour=c, motion=m, x=0.5, y=0.5, size=0.1, speed=0.2)
                        for s, c, m in objs], 'background': {}, 'n_frames': n_frames, 'fps': 8}


def logmel_profile(wave):
    """Time-averaged log-mel spectrum: a crude 'what does it sound like' vector."""
    fb = bindenc.fbank(wave, bindenc.AUDIO).numpy()
    return fb.mean(1) - fb.mean()


class TestSynthesis(unittest.TestCase):
    def test_audio_deterministic_and_alike(self):
        a = scene([('circle', 'red', 'left'), ('star', 'blue', 'up')])
        b = scene([('square', 'yellow', 'still')])
        w1, w2 = sound.scene_audio(a, seed=1), sound.scene_audio(a, seed=1)
        self.assertEqual(w1.dtype, np.float32)
        self.assertEqual(w1.shape, (32000,))                    # 16 frames / 8 fps = 2 s at 16 kHz
        np.testing.assert_array_equal(w1, w2)
        self.assertAlmostEqual(float(np.abs(w1).max()), sound.PEAK, places=5)
        w3 = sound.scene_audio(a, seed=2)
        self.assertFalse(np.array_equal(w1, w3))
        same = np.corrcoef(logmel_profile(w1), logmel_profile(w3))[0, 1]
        other = np.corrcoef(logmel_profile(w1), logmel_profile(sound.scene_audio(b, seed=1)))[0, 1]
        self.assertGreater(same, 0.95)
        self.assertLess(other, same - 0.2)

    def test_imu_deterministic_and_plausible(self):
        x1, c1 = imu.sample_imu(np.random.default_rng(5))
        x2, c2 = imu.sample_imu(np.random.default_rng(5))
        self.assertEqual((x1.shape, x1.dtype), ((6, 400), np.float32))
        np.testing.assert_array_equal(x1, x2)
        self.assertEqual(c1, c2)
        self.assertIn(c1, imu.IMU_CAPTIONS)
        rng = np.random.default_rng(0)
        still = imu.imu_trace('standing still', rng)
        self.assertAlmostEqual(float(np.linalg.norm(still[:3], axis=0).mean()), imu.G, delta=0.3)
        left = imu.imu_trace('turning left while standing', rng)
        right = imu.imu_trace('turning right while standing', rng)
        # The yaw rate lies along gravity (whatever the device orientation): its sign tells the turn.
        yaw = [float(np.mean(np.sum(x[3:] * x[:3], 0)) / imu.G) for x in (left, right)]
        self.assertGreater(yaw[0], 0.4)
        self.assertLess(yaw[1], -0.4)


class TestFbank(unittest.TestCase):
    def test_shape_and_normalisation(self):
        waves = [sound.scene_audio(scene([('diamond', 'green', 'down')]), seed=s) for s in range(3)]
        short = sound.scene_audio(scene([('circle', 'white', 'still')], n_frames=8), seed=0)
        self.assertEqual(tuple(bindenc.fbank(waves[0], bindenc.AUDIO).shape), (64, 198))   # 1+(32000-400)//160
        cfg, fbs = bindenc.audio_config(waves + [short])
        self.assertEqual(cfg['target_length'], 198)
        x = bindenc.audio_input(fbs, cfg)
        self.assertEqual(tuple(x.shape), (4, 1, 64, 198))
        real = torch.cat([x[:3].reshape(-1), x[3, 0, :, :98].reshape(-1)])     # the short clip: 98 frames
        self.assertAlmostEqual(float(real.mean()), 0.0, places=4)
        self.assertAlmostEqual(float(real.std()), 1.0, places=3)
        pad = -cfg['fbank_mean'] / cfg['fbank_std']
        torch.testing.assert_close(x[3, 0, :, 98:], torch.full((64, 100), pad))
        longer = bindenc.audio_input([bindenc.fbank(np.tile(waves[0], 2), cfg)], cfg)
        self.assertEqual(tuple(longer.shape), (1, 1, 64, 198))                  # cropped


class TestTraining(unittest.TestCase):
    KINDS = [('circle', 'red', 'still'), ('square', 'blue', 'up'), ('star', 'yellow', 'left'),
             ('diamond', 'white', 'growing')]
    TINY = dict(width=32, depth=1, heads=2)

    def sounds(self, seed, n):
        rng = np.random.default_rng(seed)
        kinds = rng.integers(len(self.KINDS), size=n)
        waves = [sound.scene_audio(scene([self.KINDS[k]], n_frames=4), seed=int(rng.integers(1 << 30)))
                 for k in kinds]
        return waves, [str(k) for k in kinds]

    def test_audio_learns_tiny_problem(self):
        targets = np.random.default_rng(9).standard_normal((len(self.KINDS), bindenc.JOINT)).astype(np.float32)
        waves, keys = self.sounds(1, 64)
        model = bindenc.train_audio(waves, targets[[int(k) for k in keys]], keys, seed=0, steps=150,
                                    batch=32, **QUIET, **self.TINY)
        test_waves, test_keys = self.sounds(2, 40)
        emb = bindenc.embed_audio(model, test_waves)
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
        r1 = bindenc.recall_at_1(emb, targets, test_keys, [str(k) for k in range(len(self.KINDS))])
        self.assertGreaterEqual(r1, 0.9)                     # chance: 0.25

    def test_imu_learns_and_resumes(self):
        caps = imu.IMU_CAPTIONS[:4]
        targets = np.random.default_rng(3).standard_normal((4, bindenc.JOINT)).astype(np.float32)
        rng = np.random.default_rng(4)
        keys = [caps[i % 4] for i in range(400)]
        traces = np.stack([imu.imu_trace(c, rng) for c in keys])
        tg = targets[[i % 4 for i in range(400)]]
        args = dict(seed=1, steps=150, batch=32, **QUIET, **self.TINY)
        whole = bindenc.train_imu(traces, tg, keys, **args)

        def interrupt(msg):
            if 'step 100 ' in msg:
                raise KeyboardInterrupt
        every = bindenc.CKPT_EVERY
        with tempfile.TemporaryDirectory() as d:
            ckpt = os.path.join(d, 'imu.pt')
            bindenc.CKPT_EVERY = 25
            try:
                with self.assertRaises(KeyboardInterrupt):
                    bindenc.train_imu(traces, tg, keys, ckpt=ckpt, **dict(args, log=interrupt))
            finally:
                bindenc.CKPT_EVERY = every
            self.assertEqual(torch.load(ckpt)['step'], 100)
            resumed = bindenc.train_imu(traces, tg, keys, ckpt=ckpt, **args)
            with self.assertRaises(ValueError):                 # a checkpoint of another run
                bindenc.train_imu(traces, tg, keys, ckpt=ckpt, **dict(args, seed=2))
        for k, v in whole.state_dict().items():
            torch.testing.assert_close(resumed.state_dict()[k], v, rtol=0, atol=0)
        test = np.stack([imu.imu_trace(caps[i % 4], rng) for i in range(40)])
        r1 = bindenc.recall_at_1(bindenc.embed_imu(whole, test), targets, [caps[i % 4] for i in range(40)], caps)
        self.assertGreaterEqual(r1, 0.9)


class TestCheckpointNames(unittest.TestCase):
    BLOCK = {'attn.in_proj_weight': '3D,D', 'attn.in_proj_bias': '3D', 'attn.out_proj.weight': 'D,D',
             'attn.out_proj.bias': 'D', 'attn.bias_k': '1,1,D', 'attn.bias_v': '1,1,D',
             'norm_1.weight': 'D', 'norm_1.bias': 'D', 'norm_2.weight': 'D', 'norm_2.bias': 'D',
             'mlp.fc1.weight': '4D,D', 'mlp.fc1.bias': '4D', 'mlp.fc2.weight': 'D,4D', 'mlp.fc2.bias': 'D'}

    def check(self, model, m, own, scale):
        d, depth = model.cfg['width'], model.cfg['depth']
        want = dict(own)
        for i in range(depth):
            for k, s in self.BLOCK.items():
                want[f'modality_trunks.{m}.blocks.{i}.{k}'] = s
        want[f'modality_postprocessors.{m}.1.log_logit_scale'] = ''
        sd = bindenc.state_dict_imagebind(model)
        self.assertEqual(sorted(sd), sorted(want))
        for k, s in want.items():
            dims = tuple(int(eval(re.sub(r'(\d)D', r'\1*D', t), {'D': d})) for t in s.split(',') if t)
            self.assertEqual(sd[k].shape, dims, k)
            self.assertEqual(sd[k].dtype, np.float32, k)
        self.assertAlmostEqual(float(sd[f'modality_postprocessors.{m}.1.log_logit_scale']), math.log(scale), places=6)
        rebuilt = bindenc.build(bindenc.config(model), sd)
        x = (bindenc.audio_input([torch.randn(64, 60)], model.cfg) if m == 'audio'
             else torch.randn(2, 6, 400))
        torch.testing.assert_close(rebuilt(x), model.eval()(x))

    def test_audio_names(self):
        cfg = dict(bindenc.AUDIO, target_length=60, fbank_mean=-5.0, fbank_std=4.0, depth=2)
        grid = 1 + ((64 - 16) // 10 + 1) * ((60 - 16) // 10 + 1)
        pre, head = 'modality_preprocessors.audio.', 'modality_heads.audio.'
        self.check(bindenc.BindEncoder(cfg), 'audio', {
            pre + 'cls_token': '1,1,D', pre + 'rgbt_stem.proj.weight': 'D,1,16,16',
            pre + 'rgbt_stem.norm_layer.weight': 'D', pre + 'rgbt_stem.norm_layer.bias': 'D',
            pre + 'pos_embedding_helper.pos_embed': f'1,{grid},D',
            head + '0.weight': 'D', head + '0.bias': 'D', head + '2.weight': f'{bindenc.JOINT},D'}, 20.0)

    def test_imu_names(self):
        cfg = dict(bindenc.IMU, input_scale=[9.81] * 3 + [0.5] * 3, depth=3)
        pre, head = 'modality_preprocessors.imu.', 'modality_heads.imu.'
        self.check(bindenc.BindEncoder(cfg), 'imu', {
            pre + 'cls_token': '1,1,D', pre + 'pos_embed': '1,51,D', pre + 'imu_stem.proj.weight': 'D,48',
            pre + 'imu_stem.norm_layer.weight': 'D', pre + 'imu_stem.norm_layer.bias': 'D',
            head + '0.weight': 'D', head + '0.bias': 'D', head + '3.weight': f'{bindenc.JOINT},D'}, 5.0)


if __name__ == '__main__':
    unittest.main()
