"""ShapesWorld: deterministic procedural multimodal scenes for training omnid's model pack.

This file owns the world itself: scene sampling (objects, motions, backgrounds), the two
renderers the model trains on ('raster': our numpy supersampling rasterizer, 'pil': PIL
ImageDraw with its own shape geometry), the frame sampling rule omnid's decoder uses,
captions / per-frame captions / dense labels / questions derived from a scene, text-to-image
requests, and the ffmpeg CLI plumbing that puts clips through the same swscale bicubic
resize (and optionally an H.264 round trip) that omnid applies to real videos.

Coordinates: x, y are fractions of the canvas width/height (y grows downwards); sizes are
radii as a fraction of min(W, H). Every function is deterministic in its inputs: randomness
comes only from the numpy Generator passed in, or from a seed stored in the scene.
"""
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ['circle', 'square', 'triangle', 'star', 'diamond']
COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'white']
# Saturated and far apart in hue *and* luma, so a 4:2:0 H.264 round trip at 64 px (chroma
# at 32 px) still tells them apart; backgrounds are dark (channels <= 90), so every object
# is brighter than its surroundings.
RGB = {
    'red': (230, 30, 30),
    'green': (30, 200, 40),
    'blue': (40, 80, 255),
    'yellow': (245, 225, 20),
    'purple': (175, 40, 215),
    'white': (245, 245, 245),
}
MOTIONS = ['left', 'right', 'up', 'down', 'still', 'growing', 'shrinking']
QTYPES = ['colour', 'shape', 'motion', 'count', 'presence']
FPS = 8
N_SAMPLE = 8
SPLIT_ID = {'train': 0, 'heldout': 1, 'foreign': 2}

FRAME_COUNTS = (8, 12, 16)
RADIUS = (0.09, 0.2)           # object radius range over the whole clip
TRAVEL = (0.25, 0.5)           # displacement of moving objects over the clip
SCALE = (1.6, 2.2)             # growth (or shrink) factor over the clip
MIN_GAP = 0.85                 # centre distance >= MIN_GAP * (r1 + r2) at all times
STEP = {'left': (-1, 0), 'right': (1, 0), 'up': (0, -1), 'down': (0, 1)}
MOTION_PHRASE = {'left': 'moving left', 'right': 'moving right', 'up': 'moving up',
                 'down': 'moving down', 'still': 'staying still', 'growing': 'growing',
                 'shrinking': 'shrinking'}
NUMBER_WORDS = ['zero', 'one', 'two', 'three']

# Training canvases: square sizes plus non-square ones (omnid squashes, aspect not kept).
TRAIN_CANVASES = [(48, 48), (64, 64), (80, 80), (96, 96), (128, 128),
                  (96, 64), (64, 96), (128, 96), (96, 128), (80, 64)]
FOREIGN_CANVASES = [(72, 72), (112, 84), (56, 56)]


def split_rng(split, i, seed=0):
    """The generator of item i of a split; the three splits draw from disjoint streams."""
    return np.random.default_rng([seed, SPLIT_ID[split], i])


# ---------------------------------------------------------------- scenes

def _geometry(rng, motion):
    """x, y, size, speed for one object that stays inside the canvas for the whole clip.

    Margins use the radius as a fraction of both W and H, which is conservative because the
    radius is a fraction of min(W, H); every shape fits in its radius box."""
    lo, hi = RADIUS
    if motion in STEP:
        r = rng.uniform(lo, hi)
        d = rng.uniform(*TRAVEL)
        along = rng.uniform(r, 1 - r - d)       # start of the travel, smaller end
        across = rng.uniform(r, 1 - r)
        sx, sy = STEP[motion]
        start = along if (sx + sy) > 0 else along + d
        x, y = (start, across) if sx else (across, start)
        return x, y, r, d
    if motion == 'still':
        r = rng.uniform(lo, hi)
        return rng.uniform(r, 1 - r), rng.uniform(r, 1 - r), r, 0.0
    g = rng.uniform(*SCALE)
    if motion == 'growing':
        r, speed = rng.uniform(lo, hi / g), g
    else:
        r, speed = rng.uniform(lo * g, hi), 1 / g
    big = max(r, r * speed)
    return rng.uniform(big, 1 - big), rng.uniform(big, 1 - big), r, speed


def track(obj, u):
    """Centre (x, y) and radius of obj at clip position u in [0, 1] (u = t / (T - 1))."""
    sx, sy = STEP.get(obj['motion'], (0, 0))
    x = obj['x'] + sx * obj['speed'] * u
    y = obj['y'] + sy * obj['speed'] * u
    r = obj['size']
    if obj['motion'] in ('growing', 'shrinking'):
        r = r * (1 + (obj['speed'] - 1) * u)
    return x, y, r


def _clear(obj, others):
    """True when obj keeps its distance from every other object over the whole clip."""
    for u in np.linspace(0, 1, 9):
        x, y, r = track(obj, u)
        for o in others:
            ox, oy, orr = track(o, u)
            if np.hypot(x - ox, y - oy) < MIN_GAP * (r + orr):
                return False
    return True


def _sample_background(rng):
    kind = str(rng.choice(['plain', 'noise', 'gradient']))
    bg = {'kind': kind, 'rgb': [int(v) for v in rng.integers(0, 91, 3)],
          'noise': 0.0, 'seed': int(rng.integers(2**31))}
    if kind == 'noise':
        bg['noise'] = float(rng.uniform(5, 25))
    elif kind == 'gradient':
        bg['rgb2'] = [int(v) for v in rng.integers(0, 91, 3)]
        bg['angle'] = float(rng.uniform(0, 2 * np.pi))
        bg['noise'] = float(rng.uniform(0, 8))
    return bg


def sample_scene(rng, n_objects=None):
    """A clip of 1-3 objects with distinct (shape, colour), each with one motion."""
    n = int(n_objects) if n_objects else int(rng.integers(1, 4))
    T = int(rng.choice(FRAME_COUNTS))
    objects = []
    while len(objects) < n:
        used = {(o['shape'], o['colour']) for o in objects}
        free = [(s, c) for s in SHAPES for c in COLOURS if (s, c) not in used]
        shape, colour = free[int(rng.integers(len(free)))]
        motion = MOTIONS[int(rng.integers(len(MOTIONS)))]
        for _ in range(50):
            x, y, r, speed = _geometry(rng, motion)
            obj = {'shape': shape, 'colour': colour, 'motion': motion, 'x': float(x),
                   'y': float(y), 'size': float(r), 'speed': float(speed)}
            if _clear(obj, objects):
                objects.append(obj)
                break
        else:
            objects = []      # no room left for this object: start the layout again
    return {'objects': objects, 'background': _sample_background(rng), 'n_frames': T,
            'fps': FPS}


# ---------------------------------------------------------------- rendering

def _star_inside(dx, dy, inner):
    """Inside a 5-pointed star (outer radius 1, one point up) with the given inner radius."""
    rho = np.hypot(dx, dy)
    sector = 2 * np.pi / 5
    a = np.mod(np.arctan2(dx, -dy) + sector / 2, sector) - sector / 2
    a = np.abs(a)                                  # fold onto [0, pi/5] by symmetry
    px, py = rho * np.cos(a), rho * np.sin(a)
    vx, vy = inner * np.cos(sector / 2), inner * np.sin(sector / 2)
    # the edge from the outer vertex (1, 0) to the inner vertex (vx, vy): inside is the
    # side the origin is on
    return (vx - 1) * py - vy * (px - 1) >= 0


def _inside(shape, dx, dy):
    """Our raster geometry, in units of the radius (dy grows downwards)."""
    if shape == 'circle':
        return dx * dx + dy * dy <= 1
    if shape == 'square':
        return np.maximum(np.abs(dx), np.abs(dy)) <= 0.8
    if shape == 'diamond':
        return np.abs(dx) + np.abs(dy) <= 1
    if shape == 'triangle':
        return (dy <= 0.75) & (np.abs(dx) <= 0.95 * (dy + 1) / 1.75)
    return _star_inside(dx, dy, 0.45)


def _pil_outline(shape):
    """PIL's own geometry: vertices in units of the radius (None: an ellipse of radius 0.95)."""
    if shape == 'circle':
        return None
    if shape == 'square':
        return [(-0.75, -0.75), (0.75, -0.75), (0.75, 0.75), (-0.75, 0.75)]
    if shape == 'diamond':
        return [(0, -1), (0.8, 0), (0, 1), (-0.8, 0)]
    if shape == 'triangle':
        return [(np.cos(a), np.sin(a)) for a in np.radians([-90, 30, 150])]
    pts = []
    for k in range(10):
        a = np.radians(-90 + 8 + 36 * k)          # slightly turned, thinner arms
        rho = 1.0 if k % 2 == 0 else 0.38
        pts.append((rho * np.cos(a), rho * np.sin(a)))
    return pts


def _coverage_raster(shape, cx, cy, rp, box, aa):
    x0, y0, x1, y1 = box
    s = 4 if aa else 1
    offs = (np.arange(s) + 0.5) / s
    xs = (np.arange(x0, x1)[:, None] + offs).ravel()
    ys = (np.arange(y0, y1)[:, None] + offs).ravel()
    inside = _inside(shape, (xs[None, :] - cx) / rp, (ys[:, None] - cy) / rp)
    return inside.reshape(y1 - y0, s, x1 - x0, s).mean(axis=(1, 3))


def _coverage_pil(shape, cx, cy, rp, box, aa):
    x0, y0, x1, y1 = box
    s = 4 if aa else 1
    img = Image.new('L', ((x1 - x0) * s, (y1 - y0) * s), 0)
    draw = ImageDraw.Draw(img)
    # canvas point p lands at (p - x0) * s - 0.5 in PIL, whose pixel centres are integers
    ox, oy = (cx - x0) * s - 0.5, (cy - y0) * s - 0.5
    pts = _pil_outline(shape)
    if pts is None:
        e = 0.95 * rp * s
        draw.ellipse([ox - e, oy - e, ox + e, oy + e], fill=255)
    else:
        draw.polygon([(ox + px * rp * s, oy + py * rp * s) for px, py in pts], fill=255)
    if aa:
        img = img.resize((x1 - x0, y1 - y0), Image.BOX)
    return np.asarray(img, dtype=np.float32) / 255


def _background(bg, W, H, T):
    """Float [T, H, W, 3] background; the noise is drawn from the seed stored in the scene."""
    base = np.asarray(bg['rgb'], np.float32)
    if bg['kind'] == 'gradient':
        a = bg['angle']
        gx = (np.arange(W) + 0.5) / W - 0.5
        gy = (np.arange(H) + 0.5) / H - 0.5
        p = gx[None, :] * np.cos(a) + gy[:, None] * np.sin(a)
        p = np.clip(p / (0.5 * (abs(np.cos(a)) + abs(np.sin(a)))) * 0.5 + 0.5, 0, 1)
        top = np.asarray(bg['rgb2'], np.float32)
        img = base + (top - base) * p[..., None]
    else:
        img = np.broadcast_to(base, (H, W, 3))
    frames = np.repeat(img[None].astype(np.float32), T, axis=0)
    if bg['noise'] > 0:
        nrng = np.random.default_rng([bg['seed'], W, H])
        frames += nrng.normal(0, bg['noise'], frames.shape).astype(np.float32)
    return frames


COVERAGE = {'raster': _coverage_raster, 'pil': _coverage_pil}


def render_clip(scene, W, H, renderer='raster', aa=True):
    """uint8 [T, H, W, 3]; objects drawn in list order (later ones on top)."""
    coverage = COVERAGE[renderer]
    T = scene['n_frames']
    frames = _background(scene['background'], W, H, T)
    m = min(W, H)
    for t in range(T):
        u = t / (T - 1) if T > 1 else 0.0
        for obj in scene['objects']:
            x, y, r = track(obj, u)
            cx, cy, rp = x * W, y * H, r * m
            box = (max(0, int(np.floor(cx - rp)) - 1), max(0, int(np.floor(cy - rp)) - 1),
                   min(W, int(np.ceil(cx + rp)) + 1), min(H, int(np.ceil(cy + rp)) + 1))
            if box[2] <= box[0] or box[3] <= box[1]:
                continue
            cov = coverage(obj['shape'], cx, cy, rp, box, aa)[..., None]
            region = frames[t, box[1]:box[3], box[0]:box[2]]
            region *= 1 - cov
            region += cov * np.asarray(RGB[obj['colour']], np.float32)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def sample_indices(T, n=N_SAMPLE):
    """omnid's rule: frame shown at t = (i + 0.5) * dur / n, i.e. floor((i + 0.5) * T / n)."""
    return [((2 * i + 1) * T) // (2 * n) for i in range(n)]


def sample_frames(clip, n=N_SAMPLE):
    return clip[sample_indices(len(clip), n)]


# ---------------------------------------------------------------- language

def _canonical(objects):
    return sorted(objects, key=lambda o: (SHAPES.index(o['shape']), COLOURS.index(o['colour'])))


def _join(parts):
    return parts[0] if len(parts) == 1 else ', '.join(parts[:-1]) + ' and ' + parts[-1]


def caption(scene):
    """Canonical clip caption: objects in SHAPES then COLOURS order, each with its motion."""
    return _join([f"a {o['colour']} {o['shape']} {MOTION_PHRASE[o['motion']]}"
                  for o in _canonical(scene['objects'])])


def _where(x, y):
    row = ['top', 'middle', 'bottom'][min(int(y * 3), 2)]
    col = ['left', 'centre', 'right'][min(int(x * 3), 2)]
    if row == 'middle':
        return 'in the centre' if col == 'centre' else f'on the {col}'
    return f'at the {row}' if col == 'centre' else f'at the {row} {col}'


def frame_caption(scene, t, W, H):
    """Caption of frame t: each object's size word and its cell on a 3x3 grid.

    "large" when the object's disc covers at least 6% of the W x H canvas, so the same
    object reads smaller on a wider canvas."""
    T = scene['n_frames']
    u = t / (T - 1) if T > 1 else 0.0
    parts = []
    for o in _canonical(scene['objects']):
        x, y, r = track(o, u)
        rp = r * min(W, H)
        size = 'large' if np.pi * rp * rp >= 0.06 * W * H else 'small'
        parts.append(f"a {size} {o['colour']} {o['shape']} {_where(x, y)}")
    return _join(parts)


def label_of(shape, colour):
    """Dense-label class of a (shape, colour); 0 is the background."""
    return 1 + COLOURS.index(colour) * len(SHAPES) + SHAPES.index(shape)


N_LABELS = 1 + len(SHAPES) * len(COLOURS)


def dense_labels(scene, t, grid=8, W=1, H=1):
    """int64 [grid, grid]: class of the topmost object at each cell centre of frame t.

    W, H give the canvas aspect (the raster geometry is round in pixels); default square."""
    T = scene['n_frames']
    u = t / (T - 1) if T > 1 else 0.0
    centres = (np.arange(grid) + 0.5) / grid
    out = np.zeros((grid, grid), np.int64)
    for o in scene['objects']:
        x, y, r = track(o, u)
        rp = r * min(W, H)
        dx = (centres[None, :] - x) * W / rp
        dy = (centres[:, None] - y) * H / rp
        out[_inside(o['shape'], dx, dy)] = label_of(o['shape'], o['colour'])
    return out


Q_COLOUR = ['What colour is the {s}?', 'What is the colour of the {s}?',
            'Which colour does the {s} have?']
Q_SHAPE = ['What shape is the {c} object?', 'Which shape is {c}?',
           'What kind of shape is the {c} one?']
Q_MOTION = ['Which way is the {c} {s} moving?', 'What is the {c} {s} doing?',
            'How does the {c} {s} move?']
Q_COUNT = ['How many shapes are there?', 'How many objects are in the video?',
           'Count the shapes.']
Q_PRESENCE = ['Is there a {c} {s}?', 'Do you see a {c} {s}?', 'Does the video show a {c} {s}?']


def _pick(rng, templates):
    return templates[int(rng.integers(len(templates)))]


def questions(scene, rng):
    """Questions with one-word answers: colour (shape unique), shape (colour unique), motion
    (every object), count, and presence as one positive plus one plausible negative."""
    objs = _canonical(scene['objects'])
    shapes = [o['shape'] for o in objs]
    colours = [o['colour'] for o in objs]
    qs = []
    for o in objs:
        s, c = o['shape'], o['colour']
        if shapes.count(s) == 1:
            qs.append({'type': 'colour', 'q': _pick(rng, Q_COLOUR).format(s=s), 'a': c})
        if colours.count(c) == 1:
            qs.append({'type': 'shape', 'q': _pick(rng, Q_SHAPE).format(c=c), 'a': s})
        qs.append({'type': 'motion', 'q': _pick(rng, Q_MOTION).format(c=c, s=s),
                   'a': o['motion']})
    qs.append({'type': 'count', 'q': _pick(rng, Q_COUNT), 'a': NUMBER_WORDS[len(objs)]})
    present = set(zip(shapes, colours))
    pos = objs[int(rng.integers(len(objs)))]
    # negatives that a model must look at to reject: a shape seen here in a colour not
    # seen with it, or a colour seen here on another shape
    neg = sorted(({(s, c) for s in shapes for c in COLOURS} |
                  {(s, c) for s in SHAPES for c in colours}) - present,
                 key=lambda p: (SHAPES.index(p[0]), COLOURS.index(p[1])))
    ns, nc = neg[int(rng.integers(len(neg)))]
    for (s, c), a in (((pos['shape'], pos['colour']), 'yes'), ((ns, nc), 'no')):
        qs.append({'type': 'presence', 'q': _pick(rng, Q_PRESENCE).format(c=c, s=s), 'a': a})
    return qs


T2I_PROMPTS = ['Draw a {c} {s}.', 'Show me a {c} {s}.', 'Make a picture of a {c} {s}.',
               'Generate an image of a {c} {s}.', 'Paint a {c} {s}.']


def t2i_sample(rng):
    """(prompt, caption, scene): a request to draw one static object, and a 1-frame scene
    with that object near the centre on a plain or noisy dark background."""
    s = SHAPES[int(rng.integers(len(SHAPES)))]
    c = COLOURS[int(rng.integers(len(COLOURS)))]
    obj = {'shape': s, 'colour': c, 'motion': 'still', 'x': float(0.5 + rng.uniform(-0.08, 0.08)),
           'y': float(0.5 + rng.uniform(-0.08, 0.08)), 'size': float(rng.uniform(0.15, 0.3)),
           'speed': 0.0}
    bg = {'kind': 'plain', 'rgb': [int(v) for v in rng.integers(0, 91, 3)], 'noise': 0.0,
          'seed': int(rng.integers(2**31))}
    if rng.random() < 0.5:
        bg['kind'], bg['noise'] = 'noise', float(rng.uniform(5, 25))
    scene = {'objects': [obj], 'background': bg, 'n_frames': 1, 'fps': FPS}
    return _pick(rng, T2I_PROMPTS).format(c=c, s=s), f'a {c} {s}', scene


# ---------------------------------------------------------------- ffmpeg (what omnid sees)

FFMPEG = ['ffmpeg', '-hide_banner', '-loglevel', 'error', '-nostdin']
BATCH_BYTES = 64 << 20         # raw input per ffmpeg stream: bounds memory, not speed


def _raw_in(W, H):
    # one thread per ffmpeg: the bytes then never depend on how many run at once
    return ['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', f'{W}x{H}', '-r', str(FPS),
            '-i', '-', '-threads', '1']


def _x264(T, crf):
    # a keyframe exactly every T frames and none in between (no scene cuts), closed GOPs:
    # clips batched into one stream never predict from each other
    return ['-c:v', 'libx264', '-preset', 'veryfast', '-crf', str(crf), '-pix_fmt', 'yuv420p',
            '-g', str(T), '-keyint_min', str(T), '-sc_threshold', '0',
            '-x264-params', 'open-gop=0']


def _pipe(cmds, data):
    """Runs cmds as a shell-free pipeline fed with data; returns the last one's stdout."""
    procs = []
    for i, cmd in enumerate(cmds):
        stdin = subprocess.PIPE if i == 0 else procs[-1].stdout
        procs.append(subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE))
        if i > 0:
            procs[-2].stdout.close()    # the next process owns the read end now
    if len(procs) == 1:
        out, last_err = procs[0].communicate(data)
    else:
        def feed():
            try:
                procs[0].stdin.write(data)
                procs[0].stdin.close()
            except BrokenPipeError:
                pass                    # the failing process reports it below
        writer = threading.Thread(target=feed)
        writer.start()
        out, last_err = procs[-1].communicate()
        writer.join()
    errs = []
    for p in procs[:-1]:
        errs.append(p.stderr.read())
        p.stderr.close()
    errs.append(last_err)
    for p, cmd, err in zip(procs, cmds, errs):
        if p.wait() != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {err.decode(errors='replace')}")
    return out


def _batches(clips, crfs):
    """Groups of clip indices with the same T x H x W and crf, each under BATCH_BYTES."""
    groups = {}
    for k, (c, crf) in enumerate(zip(clips, crfs)):
        groups.setdefault((c.shape[:3], crf), []).append(k)
    order = sorted(groups, key=lambda g: (g[0], -1 if g[1] is None else g[1]))
    for shape, crf in order:
        idx = groups[(shape, crf)]
        per = max(1, BATCH_BYTES // max(1, int(np.prod(shape)) * 3))
        for i in range(0, len(idx), per):
            yield shape, crf, idx[i:i + per]


def _stream(clips, T, H, W, size, crf):
    """One ffmpeg stream: clips of one T x H x W and crf -> uint8 [n, T, oH, oW, 3]."""
    data = b''.join(np.ascontiguousarray(c, np.uint8).tobytes() for c in clips)
    oW, oH = (W, H) if size is None else (size, size)
    # decode side: one swscale call scales and converts to RGB, as omnid does
    tail = (['-vf', f'scale={oW}:{oH}:flags=bicubic'] if size is not None else []) + \
        ['-pix_fmt', 'rgb24', '-fps_mode', 'passthrough', '-f', 'rawvideo', '-']
    if crf is None:
        cmds = [FFMPEG + _raw_in(W, H) + tail]
    else:
        cmds = [FFMPEG + _raw_in(W, H) + _x264(T, crf) + ['-f', 'h264', '-'],
                FFMPEG + ['-threads', '1', '-f', 'h264', '-i', '-'] + tail]
    frames = np.frombuffer(_pipe(cmds, data), np.uint8)
    want = len(clips) * T * oH * oW * 3
    if frames.size != want:
        raise RuntimeError(f'ffmpeg returned {frames.size} bytes, expected {want}')
    return frames.reshape(len(clips), T, oH, oW, 3)


def _transcode(clips, size, crf, threads):
    crfs = list(crf) if isinstance(crf, (list, tuple)) else [crf] * len(clips)
    if len(crfs) != len(clips):
        raise ValueError(f'{len(crfs)} crf values for {len(clips)} clips')
    jobs = list(_batches(clips, crfs))
    out = [None] * len(clips)

    def run(job):
        (T, H, W), crf, idx = job
        frames = _stream([clips[k] for k in idx], T, H, W, size, crf)
        for j, k in enumerate(idx):
            out[k] = frames[j].copy()
    # streams are independent processes: up to `threads` of them run at once
    with ThreadPoolExecutor(max(1, threads)) as pool:
        list(pool.map(run, jobs))
    return out


def resize_clips(clips, size, crf=None, threads=1):
    """Clips (uint8 [T, H, W, 3], any mix of sizes) squashed to size x size with swscale
    bicubic, after an H.264 (yuv420p) round trip at their own size where a crf is given.

    crf: None (no H.264), one value for all clips, or a list with one value (or None) per
    clip. Clips sharing T x H x W and crf go through one ffmpeg stream with a keyframe
    every T frames; a clip then differs from one encoded alone only through x264's rate
    control state, never by prediction from its neighbours. Each distinct (canvas, T, crf)
    costs one ffmpeg process (two with H.264), so many distinct crf values in a small
    call are slower. threads: streams run at once (each ffmpeg uses one thread, so the
    result does not depend on it)."""
    return _transcode(clips, size, crf, threads)


def h264_roundtrip(clips, crf, threads=1):
    """Clips through libx264 yuv420p at crf (one value or one per clip) and back to RGB at
    their own size."""
    return _transcode(clips, None, crf, threads)


def write_video(path, clip, fps=FPS, crf=23):
    """An mp4 omnid can open: libx264 yuv420p at crf with the same encoder settings as
    resize_clips (so omnid decodes what training saw), or lossless RGB H.264 when crf is
    None."""
    T, H, W, _ = clip.shape
    codec = (['-c:v', 'libx264rgb', '-qp', '0', '-pix_fmt', 'rgb24'] if crf is None else
             _x264(T, crf))
    cmd = FFMPEG + ['-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', f'{W}x{H}',
                    '-r', str(fps), '-i', '-', '-threads', '1'] + codec + \
        ['-movflags', '+faststart', str(path)]
    r = subprocess.run(cmd, input=np.ascontiguousarray(clip, np.uint8).tobytes(),
                       capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.decode(errors='replace')}")


def clip_params(rng, split):
    """How a clip of a split is rendered and degraded: canvas, renderer, aa, H.264 crf.

    train / heldout: our two renderers 50/50, aa 50/50, H.264 at crf 18-36 for 60% of clips
    (else the clip reaches the model losslessly). foreign: the geq renderer (geq.py) on
    canvases training never uses, no aa, crf 30."""
    if split == 'foreign':
        W, H = FOREIGN_CANVASES[int(rng.integers(len(FOREIGN_CANVASES)))]
        return {'W': W, 'H': H, 'renderer': 'geq', 'aa': False, 'crf': 30}
    W, H = TRAIN_CANVASES[int(rng.integers(len(TRAIN_CANVASES)))]
    renderer = 'raster' if rng.random() < 0.5 else 'pil'
    aa = bool(rng.random() < 0.5)
    crf = int(rng.integers(18, 37)) if rng.random() < 0.6 else None
    return {'W': W, 'H': H, 'renderer': renderer, 'aa': aa, 'crf': crf}
