#!/usr/bin/python3
"""Evaluates the ShapesWorld pack on held-out clips that training never drew (docs/DEMO.md).

  eval.py WORK_DIR [--n 300] [--foreign 120] [--omnid BUILD/daemon/omnid --pack PACK]

Writes the evaluation sets once (evalset.py: WORK/eval/heldout, WORK/eval/foreign: mp4 files
and their questions), then
- PyTorch (the trained tensors in WORK/ckpt): video QA accuracy per question type, video<->text
  retrieval R@1 (a hit when the nearest item has the query's caption), audio<->video and
  IMU<->text R@1, the LLM's answers from sounds and IMU traces, text-to-image adherence;
- omnid, through the daemon, on the same mp4 files (uploaded as bytes, greedy decoding): its
  answers' accuracy and their agreement with PyTorch's, and its video embeddings against
  PyTorch's.
Results go to WORK/eval/results.json and are printed as Markdown.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import blas  # noqa: F401  (first: OpenBLAS reads its thread count when it loads)
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', '..', 'clients', 'python'))
import bindenc  # noqa: E402
import evalset  # noqa: E402
import infer  # noqa: E402
import models  # noqa: E402
import stages  # noqa: E402
import stages_out  # noqa: E402
import vocab  # noqa: E402
import world  # noqa: E402


def ensure_set(d, split, n, seed):
    if os.path.exists(os.path.join(d, 'items.jsonl')):
        with open(os.path.join(d, 'items.jsonl')) as f:
            if sum(1 for _ in f) >= n:
                return
    evalset.main([d, '--split', split, '--n', str(n), '--seed', str(seed), '--threads', '2'])


def load_items(d, n):
    with open(os.path.join(d, 'items.jsonl')) as f:
        return [json.loads(x) for x in f][:n]


def decode(path, size=models.VIT['image_size']):
    """The 8 frames omnid samples from an mp4, squashed to size x size by swscale bicubic."""
    r = subprocess.run(['ffmpeg', '-hide_banner', '-loglevel', 'error', '-nostdin', '-i', path, '-vf',
                        'scale=%d:%d:flags=bicubic' % (size, size), '-pix_fmt', 'rgb24', '-f', 'rawvideo', '-'],
                       capture_output=True, check=True)
    clip = np.frombuffer(r.stdout, np.uint8).reshape(-1, size, size, 3)
    return world.sample_frames(clip)


def norm_answer(s):
    return s.strip().lower().rstrip('.')


@torch.no_grad()
def torch_eval(w, sp, d, items):
    feats = torch.cat([infer.vit_features(w, np.stack([decode(os.path.join(d, it['file'])) for it in items[i:i + 32]]))
                       for i in range(0, len(items), 32)])
    tokens, rows = infer.video_rows(w, feats)
    vemb = models.video_head(w, tokens).numpy()
    answers, per = [], {}
    for i, it in enumerate(items):
        for q in it['questions']:
            a = infer.ask(w, sp, q['q'], rows[i])
            answers.append(a)
            per.setdefault(q['type'], []).append(norm_answer(a) == q['a'])
    caps = sorted({it['caption'] for it in items})
    temb = stages_out.text_embeddings(w, sp, caps)
    vk = [it['caption'] for it in items]
    return {'answers': answers, 'video_emb': vemb,
            'vqa': {k: float(np.mean(v)) for k, v in per.items()},
            'vqa_overall': float(np.mean([x for v in per.values() for x in v])),
            'n_questions': sum(len(v) for v in per.values()),
            'r1_video_to_text': bindenc.recall_at_1(vemb, temb, vk, caps),
            'r1_text_to_video': bindenc.recall_at_1(temb, vemb, caps, vk),
            'n_clips': len(items), 'n_captions': len(caps)}


@torch.no_grad()
def av_qa(w, sp, items, a, e, caps):
    """The LLM's greedy answers from held-out sounds (each item's questions and its caption) and
    IMU traces (the activity), scored like the video answers."""
    ra = infer.av_rows(w, 'audio', torch.from_numpy(a))
    ri = infer.av_rows(w, 'imu', torch.from_numpy(e))
    per = {}
    for k, it in enumerate(items):
        for q in it['questions']:
            per.setdefault(q['type'], []).append(norm_answer(infer.ask(w, sp, q['q'], ra[k], '<audio>')) == q['a'])
        said = infer.ask(w, sp, stages.DESCRIBE_SOUND[0], ra[k], '<audio>', 40)
        per.setdefault('caption', []).append(norm_answer(said) == norm_answer(it['caption']))
    imu_ok = [norm_answer(infer.ask(w, sp, stages.ASK_IMU[0], ri[k], '<imu>', 40)) == norm_answer(c)
              for k, c in enumerate(caps)]
    return {'audio_qa': {k: float(np.mean(v)) for k, v in per.items()},
            'audio_qa_overall': float(np.mean([x for k, v in per.items() if k != 'caption' for x in v])),
            'imu_activity': float(np.mean(imu_ok)), 'n_audio_questions': sum(len(it['questions']) for it in items)}


def omnid_eval(omnid, pack, d, items, torch_answers, torch_emb, env=None):
    """env: omnid's environment (tests pass a sanitizer build's preload through it)."""
    import omni_client
    with tempfile.TemporaryDirectory() as tmp:
        ready = os.path.join(tmp, 'ready')
        proc = subprocess.Popen([omnid, '--pack', pack, '--front', 'tcp://127.0.0.1:*', '--pub', 'tcp://127.0.0.1:*',
                                 '--sensors', 'tcp://127.0.0.1:*', '--backend', 'tcp://127.0.0.1:*',
                                 '--ready-file', ready], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env)
        try:
            for _ in range(600):
                if os.path.exists(ready) or proc.poll() is not None:
                    break
                time.sleep(0.1)
            with open(ready) as f:
                ep = [x.split('=', 1)[1].strip() for x in f if x.startswith('front=')][0]
            c = omni_client.Client(ep, timeout=120)
            per, agree, k, emb_diff, cos = {}, [], 0, [], []
            t0 = time.time()
            for i, it in enumerate(items):
                path = os.path.join(d, it['file'])
                _, e, _ = c.embed(video=path)
                emb_diff.append(float(np.abs(e - torch_emb[i]).max()))
                cos.append(float(e @ torch_emb[i] / (np.linalg.norm(e) * np.linalg.norm(torch_emb[i]))))
                for q in it['questions']:
                    text = ''.join(t for t, _ in c.ask(q['q'], video=path, temperature=0, max_tokens=12))
                    per.setdefault(q['type'], []).append(norm_answer(text) == q['a'])
                    agree.append(norm_answer(text) == norm_answer(torch_answers[k]))
                    k += 1
            c.close()
            proc.terminate()
            return {'omnid_exit': proc.wait(60), 'vqa': {t: float(np.mean(v)) for t, v in per.items()},
                    'vqa_overall': float(np.mean([x for v in per.values() for x in v])),
                    'agreement_with_pytorch': float(np.mean(agree)), 'n_questions': k, 'n_clips': len(items),
                    'embedding_max_abs_diff': max(emb_diff), 'embedding_min_cosine': min(cos),
                    'seconds': round(time.time() - t0, 1)}
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def table(res):
    lines = ['| split | clips | questions | ' + ' | '.join(world.QTYPES) + ' | overall | R@1 v→t | R@1 t→v |',
             '|---|---|---|' + '---|' * (len(world.QTYPES) + 3)]
    for split, r in res.items():
        if split == 't2i':
            continue
        for who in ('pytorch', 'omnid'):
            if who not in r:
                continue
            x = r[who]
            ret = ('%.3f | %.3f' % (x['r1_video_to_text'], x['r1_text_to_video'])) if who == 'pytorch' else '– | –'
            lines.append('| %s (%s) | %d | %d | %s | %.3f | %s |' % (
                split, who, r['pytorch']['n_clips'] if who == 'pytorch' else x['n_clips'], x['n_questions'],
                ' | '.join('%.3f' % x['vqa'].get(t, float('nan')) for t in world.QTYPES), x['vqa_overall'], ret))
    return '\n'.join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('work')
    ap.add_argument('--n', type=int, default=300)
    ap.add_argument('--foreign', type=int, default=120)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--omnid', help='omnid binary: also evaluate through the daemon')
    ap.add_argument('--omnid-n', type=int, default=100,
                    help='clips of each split asked through omnid (lavapipe answers ~1 question/s)')
    ap.add_argument('--t2i-n', type=int, default=120, help='held-out text-to-image requests')
    ap.add_argument('--pack', help='the pack omnid loads (default WORK/pack)')
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sp = vocab.load(os.path.join(a.work, 'vocab.model'))
    p = models.build(sp.get_piece_size(), a.seed)
    p.load(torch.load(os.path.join(a.work, 'ckpt', 'qa.pt'))['params'])
    res = {}
    for split, n in (('heldout', a.n), ('foreign', a.foreign)):
        d = os.path.join(a.work, 'eval', split)
        ensure_set(d, split, n, a.seed)
        items = load_items(d, n)
        t = torch_eval(p.t, sp, d, items)
        r = {'pytorch': {k: v for k, v in t.items() if k not in ('answers', 'video_emb')}}
        if split == 'heldout' and os.path.exists(os.path.join(a.work, 'ckpt', 'audio_imu_final.pt')):
            audio, imu_model = stages_out.load_audio_imu(os.path.join(a.work, 'ckpt'))
            r['audio_imu'], ae, ie, icaps = stages_out.eval_audio_imu(p.t, sp, audio, imu_model, items, t['video_emb'],
                                                                       600, a.seed)
            r['audio_imu'].update(av_qa(p.t, sp, items, ae, ie, icaps))
        if a.omnid:
            m = min(a.omnid_n, len(items))
            k = sum(len(it['questions']) for it in items[:m])
            r['omnid'] = omnid_eval(a.omnid, a.pack or os.path.join(a.work, 'pack'), d, items[:m],
                                    t['answers'][:k], t['video_emb'][:m])
        res[split] = r
        print(json.dumps({split: r}, indent=1), flush=True)
    if os.path.exists(os.path.join(a.work, 'ckpt', 't2i_final.pt')):
        vae, unet, proj, uncond = stages_out.load_t2i(os.path.join(a.work, 'ckpt'))
        res['t2i'], images = stages_out.eval_t2i(p.t, sp, vae, unet, proj, uncond, a.t2i_n, a.seed)
        np.save(os.path.join(a.work, 'eval', 't2i_samples.npy'), images)
        print(json.dumps({'t2i': res['t2i']}, indent=1), flush=True)
    with open(os.path.join(a.work, 'eval', 'results.json'), 'w') as f:
        json.dump(res, f, indent=1)
    print(table(res))
    return 0


if __name__ == '__main__':
    sys.exit(main())
