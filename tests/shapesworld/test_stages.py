#!/usr/bin/python3
"""tools/shapesworld/stages.py, the frame encoder's training targets: the dense labels, the
position target and the ViT's patch tokens must name the same cells in the same order (a
transposed or shifted target still trains, into features that put objects in the wrong place),
and the presence labels must be the clip's objects; the frame Q-Former's targets must put each
object where its dense labels are, in every sampled frame; the rescaling folded into its last
LayerNorm must leave what the frame head reads unchanged; the scene loss must weigh motion
apart from presence; the language batch packed into trees must give every answer token the
logits it gets alone; a step's sounds and IMU traces must name their own rows; the LLM's size
must move no other tensor's initial value. < 15 s at 1 thread."""
import math
import os
import sys
import unittest

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
sys.path.insert(0, os.path.join(ROOT, 'tools', 'shapesworld'))
import models  # noqa: E402
import stages  # noqa: E402
import vocab  # noqa: E402
import world  # noqa: E402

torch.set_num_threads(1)
S = models.VIT['image_size']
G = models.GRID


def lit_patches(frame):
    """Which patch tokens of the ViT carry light: the encoder blocks and position embeddings
    zeroed, the patch embedding summing each patch's pixels, so a token's first channel is
    positive exactly where its patch holds anything brighter than black."""
    p = models.build(640, 0)
    w = p.t
    with torch.no_grad():
        for k, v in w.items():
            if k.startswith('vision_model.encoder.') and (k.endswith('projection.weight') or 'mlp.fc2' in k
                                                          or k.endswith('projection.bias')):
                v.zero_()
        w['vision_model.embeddings.position_embedding'].zero_()
        w['vision_model.embeddings.class_embedding'].zero_()
        w['vision_model.embeddings.patch_embedding.weight'].zero_()
        w['vision_model.embeddings.patch_embedding.weight'][0] = 1.0
        w['vision_model.embeddings.patch_embedding.bias'].zero_()
        w['vision_model.post_layernorm.bias'].zero_()
        px = torch.from_numpy(frame).float().permute(2, 0, 1)[None] / 255.0
        _, last = models.vit(w, px)
    return (last[0, 1:, 0] > 1e-3).numpy()


def one_object_scene(x, y, shape='triangle'):
    obj = {'shape': shape, 'colour': 'white', 'motion': 'still', 'x': x, 'y': y, 'size': 0.12, 'speed': 0.0}
    return {'objects': [obj], 'background': {'kind': 'plain', 'rgb': [0, 0, 0], 'noise': 0.0, 'seed': 1},
            'n_frames': 1, 'fps': world.FPS}


class TestTargets(unittest.TestCase):
    def test_dense_labels_name_the_patches_the_vit_sees(self):
        # off the diagonal, so that a transposed grid would put the object elsewhere
        for x, y in ((0.2, 0.75), (0.8, 0.3), (0.55, 0.15)):
            scene = one_object_scene(x, y)
            frame = world.render_clip(scene, S, S, 'raster', False)[0]
            labels = world.dense_labels(scene, 0, G).reshape(-1) > 0
            lit = lit_patches(frame)
            self.assertGreater(labels.sum(), 0)
            # a labelled cell has the shape at its centre, so its patch is lit; a lit patch
            # without a label only holds the shape's edge, next to a labelled one
            self.assertTrue(np.all(lit[labels]), (x, y))
            near = np.zeros((G, G), bool)
            for r, c in zip(*np.nonzero(labels.reshape(G, G))):
                near[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2] = True
            self.assertTrue(np.all(near.reshape(-1)[lit]), (x, y))
            self.assertFalse(np.all(lit[labels.reshape(G, G).T.reshape(-1)]), 'a transposed grid would pass too')

    def test_position_target_is_row_then_column(self):
        # the loss reads the position head as G row logits then G column logits: a head that
        # predicts the true row and column of every cell must cost (almost) nothing, and one
        # with rows and columns swapped must not
        B, P, D = 2, G * G, 2 * G
        cell = np.arange(P)
        onehot = np.zeros((B, P, D), np.float32)
        onehot[:, cell, cell // G] = 1
        onehot[:, cell, G + cell % G] = 1
        swapped = np.zeros((B, P, D), np.float32)
        swapped[:, cell, cell % G] = 1
        swapped[:, cell, G + cell // G] = 1
        w = {'dense_head.weight': torch.zeros(models.N_CLASSES, D), 'dense_head.bias': torch.zeros(models.N_CLASSES),
             'presence_head.weight': torch.zeros(models.N_CLASSES - 1, D),
             'presence_head.bias': torch.zeros(models.N_CLASSES - 1),
             'position_head.weight': 50 * torch.eye(D), 'position_head.bias': torch.zeros(D)}
        labels = torch.zeros(B, G, G, dtype=torch.long)
        present = torch.zeros(B, models.N_CLASSES - 1)
        base = stages.supervised_loss(w, torch.zeros(B, D), torch.zeros(B, 1 + P, D), labels, present).item()

        def loss(feats):
            last = torch.cat([torch.zeros(B, 1, D), torch.from_numpy(feats)], 1)
            return stages.supervised_loss(w, torch.zeros(B, D), last, labels, present).item()
        rest = np.log(models.N_CLASSES) + np.log(2)     # dense and presence terms at zero logits
        self.assertAlmostEqual(base, rest + np.log(G), delta=1e-4)
        self.assertLess(loss(onehot) - rest, 1e-4)
        self.assertGreater(loss(swapped) - rest, 10)

    def test_presence_and_dense_labels_of_a_batch(self):
        frames, recs = stages.data.render_chunk((0, 6, 0))
        idx = [(i, k) for i in range(6) for k in (0, 7)]
        px, caps, labels, present = stages.frame_batch(frames, recs, idx)
        self.assertEqual(tuple(px.shape), (12, 3, S, S))
        for b, (i, k) in enumerate(idx):
            want = {world.label_of(o['shape'], o['colour']) for o in recs[i]['scene']['objects']}
            self.assertEqual({int(c) + 1 for c in torch.nonzero(present[b])}, want)
            self.assertTrue(set(np.unique(labels[b].numpy())) - {0} <= want)
            for o in recs[i]['scene']['objects']:
                self.assertIn('%s %s' % (o['colour'], o['shape']), caps[b])


class TestFrameAndSceneTargets(unittest.TestCase):
    def test_frame_targets_put_each_object_on_its_labelled_cells(self):
        frames, recs = stages.data.render_chunk((0, 8, 0))
        pairs = [(i, k) for i in range(8) for k in range(8)]
        pres, geo = stages.frame_targets(recs, pairs)
        checked = 0
        for b, (i, k) in enumerate(pairs):
            labels = stages.data.frame_texts(recs[i], k)[1]
            want = {world.label_of(o['shape'], o['colour']) - 1 for o in recs[i]['scene']['objects']}
            self.assertEqual({int(c) for c in torch.nonzero(pres[b])}, want)
            for c in want:
                rows, cols = np.nonzero(labels == c + 1)
                if len(rows) == 0:      # too small to cover a cell centre
                    continue
                x, y = geo[b, c, :2].tolist()
                # within a cell of the labelled cells' centroid, in every sampled frame: a target
                # with x and y swapped, or taken at the wrong frame of a moving object, is not
                self.assertLess(abs(x - (cols.mean() + 0.5) / G), 1.0 / G, (i, k, c))
                self.assertLess(abs(y - (rows.mean() + 0.5) / G), 1.0 / G, (i, k, c))
                checked += 1
        self.assertGreater(checked, 60)

    def test_rescaling_keeps_what_the_frame_head_reads(self):
        p = models.build(640, 0)
        w = p.t
        feats = np.random.default_rng(0).standard_normal((4, 8, G * G + 1, models.VIT['hidden_size'])).astype(np.float16)
        with torch.no_grad():
            before = models.qformer_frames(w, stages.clip_feats(feats, range(4)).flatten(0, 1))
            head = F.linear(before.flatten(1), w['frame_head.weight'], w['frame_head.bias'])
            stages.rescale_frame_tokens(w, feats, n=4)
            after = models.qformer_frames(w, stages.clip_feats(feats, range(4)).flatten(0, 1))
            head2 = F.linear(after.flatten(1), w['frame_head.weight'], w['frame_head.bias'])
        t = after.reshape(-1, after.shape[-1])
        self.assertLess(float(t.mean(0).abs().max()), 1e-4)
        self.assertAlmostEqual(float(t.var(0).mean()), 1.0, delta=1e-3)
        self.assertGreater(float((after - before).abs().max()), 0.1)
        torch.testing.assert_close(head2, head, atol=1e-4, rtol=1e-4)

    def test_scene_loss_weighs_motion_apart_from_presence(self):
        recs = stages.data.render_chunk((0, 4, 0))[1]
        nq, D, P, M = models.VQF['n_query'], models.VQF['hidden'], models.N_CLASSES - 1, models.N_MOTIONS
        w = {k: v.detach().clone() for k, v in models.build(640, 0).t.items() if k.startswith('scene_')}
        for v in w.values():
            v.zero_()
        tokens = torch.zeros(4, nq, D)
        # at zero weights: log 2 for presence plus log 7 for the motion of the objects present,
        # where one cross-entropy over 8 outcomes per pair would give log 8
        self.assertAlmostEqual(stages.scene_loss(w, tokens, recs, range(4)).item(), np.log(2) + np.log(7), delta=1e-5)
        # one token per object: its pair one-hot in channels [0, 30), its motion in [30, 37).
        # Each pair's query finds its token by the pair channels, and the shared classifier
        # reads the motion channels; presence sums the pair channels over the tokens.
        for b in range(4):
            for j, o in enumerate(recs[b]['scene']['objects']):
                tokens[b, j, world.label_of(o['shape'], o['colour']) - 1] = 1
                tokens[b, j, P + world.MOTIONS.index(o['motion'])] = 1
        w['scene_query'][:, :P] = 40 * torch.eye(P)
        w['scene_key.weight'][:P, :P] = torch.eye(P) * math.sqrt(D)
        w['scene_value.weight'][:M, P:P + M] = torch.eye(M)
        w['scene_motion.weight'][:, :M] = 40 * torch.eye(M)
        w['scene_head.weight'].view(P, nq, D)[:, :, :P] = 80 * torch.eye(P)[:, None, :]
        w['scene_head.bias'][:] = -40
        right = stages.scene_loss(w, tokens, recs, range(4)).item()
        self.assertLess(right, 1e-3)
        # the motion term reads only the pairs present: what absent pairs gather is free
        absent = [c for c in range(P) if all(stages.scene_labels(r)[c] == M for r in recs)]
        w['scene_query'][absent] = torch.randn(len(absent), D)
        self.assertLess(abs(stages.scene_loss(w, tokens, recs, range(4)).item() - right), 1e-6)
        # a wrong motion costs its full weight whatever the number of absent pairs
        tokens[:, :, P:P + M] = tokens[:, :, P:P + M].roll(1, -1)
        self.assertGreater(stages.scene_loss(w, tokens, recs, range(4)).item(), 20)


class TestTreePacking(unittest.TestCase):
    def test_packed_answers_get_the_logits_they_get_alone(self):
        """Per video, sequences share BOS, a few prompt tokens and the video rows, then differ;
        requests without video share only BOS. Query/key weights are scaled up so attention is
        sharp: with the positions not reset per branch, or branches seeing each other, the
        logits move by far more than the tolerance."""
        p = models.build(640, 0)
        w = p.t
        nq = 8
        with torch.no_grad():
            for k, v in w.items():
                if k.endswith(('q_proj.weight', 'k_proj.weight')):
                    v.mul_(0.15 / v.std())
        g = torch.Generator().manual_seed(3)
        tok = lambda n: torch.randint(10, 600, (n,), generator=g).tolist()  # noqa: E731
        seqs = []
        for v in range(3):
            head = [1] + tok(3) + [-1] * nq
            for _ in range(2 + 4 * v):
                seqs.append((head + tok(int(torch.randint(3, 9, (1,), generator=g))),
                             tok(int(torch.randint(1, 12, (1,), generator=g))), v))
        seqs += [([1] + tok(6), tok(4), -1), ([1] + tok(9), tok(2), -1)]
        rows_of = torch.randn((3, nq, models.LLM['n_embd']), generator=g)
        ids = stages.pack_tree(seqs)[0]
        self.assertLess(ids.numel(), sum(len(a) + len(b) for a, b, _ in seqs))
        self.assertLess(len(ids), 4, 'some row should hold two of the four trees')
        with torch.no_grad():
            packed, tgt, owner = stages.answer_logits(w, seqs, rows_of)
            alone = []
            for a, b, v in seqs:
                x = torch.tensor([a + b])
                e = models.embed_tokens(w, x).clone()
                if v >= 0:
                    e[0, a.index(-1):a.index(-1) + nq] = rows_of[v]
                alone.append(models.llm_forward(w, e)[0, len(a) - 1:len(a) + len(b) - 1])
        for s, (_, b, _) in enumerate(seqs):
            self.assertEqual(tgt[owner == s].tolist(), b)
            torch.testing.assert_close(packed[owner == s], alone[s], atol=1e-4, rtol=0)
        want = torch.tensor([t for _, b, _ in seqs for t in b])
        self.assertLess(abs(stages.lm_loss(w, seqs, rows_of).item()
                            - F.cross_entropy(torch.cat(alone), want).item()), 1e-5)


class TestLanguageSide(unittest.TestCase):
    def test_llm_size_moves_no_other_initial_value(self):
        """The vision stages' checkpoints hold what they trained from these starts: a different
        LLM must leave them all where they were, and draw its own from a generator of its own."""
        a = models.build(640, 0)
        saved = dict(models.LLM)
        try:
            models.LLM.update(n_embd=96, n_layer=2, n_head=3, n_head_kv=3, n_ff=256)
            b = models.build(640, 0)
        finally:
            models.LLM.update(saved)
        side = lambda k, g: g in ('llm', 'inproj') or k.startswith('llama_proj')  # noqa: E731
        rest = [k for k, g in a.group.items() if not side(k, g)]
        self.assertEqual(rest, [k for k, g in b.group.items() if not side(k, g)])
        for k in rest:
            self.assertTrue(torch.equal(a.t[k], b.t[k]), k)
        self.assertNotEqual(a.t['lm_head.weight'].shape, b.t['lm_head.weight'].shape)
        # the LLM side's first draw (llama_proj) is not the vision side's first (patch embedding)
        # again: a generator seeded alike would give the same values up to the scale
        v = a.t['vision_model.embeddings.patch_embedding.weight'].flatten()[:64]
        l = a.t['llama_proj.weight'].flatten()[:64]
        self.assertFalse(torch.allclose(v / v[0], l / l[0], rtol=1e-3))

    def test_sounds_and_imu_traces_name_their_own_rows(self):
        """av_examples' sequences come after a step's clips: sounds take the rows right after
        them, IMU traces the rows after the sounds, each with its own placeholder's row count,
        and what is asked matches the embedding drawn for that row."""
        sp = vocab.load(os.path.join(ROOT, 'packs', 'shapesworld', 'tokenizer.model'))
        rng = np.random.default_rng(0)
        scenes = [world.sample_scene(world.split_rng('train', i, 0)) for i in range(40)]
        av = {'audio': torch.zeros(40, models.JOINT), 'audio_scenes': scenes,
              'imu': torch.zeros(30, models.JOINT), 'imu_caps': ['cap %d' % i for i in range(30)]}
        first = 32
        seqs, aud, imu = stages.av_examples(sp, av, rng, first)
        n_a, n_i = stages.AV_BATCH
        self.assertEqual((len(aud), len(imu)), (n_a, n_i))
        for a, b, row in seqs:
            self.assertEqual(a.count(-1), models.AV_ROWS)
            if row < first + n_a:
                self.assertGreaterEqual(row, first)
                scene = scenes[aud[row - first]]
                self.assertIn(sp.decode(b[:-1]), [q['a'] for q in world.questions(scene, np.random.default_rng(0))]
                              + [world.caption(scene)])
            else:
                self.assertLess(row, first + n_a + n_i)
                self.assertEqual(sp.decode(b[:-1]), av['imu_caps'][imu[row - first - n_a]])
        self.assertEqual({r for _, _, r in seqs}, set(range(first, first + n_a + n_i)))


if __name__ == '__main__':
    unittest.main()
