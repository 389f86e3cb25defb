"""A foreign ShapesWorld renderer for evaluation only: ffmpeg's geq filter draws the scene.

The model never trains on these pixels. Everything differs from world.py's renderers except
the scene itself: the shapes are closed-form inequalities evaluated once per pixel centre
(no anti-aliasing; a star is a polar curve, not a polygon), the background noise is ffmpeg's
own noise filter, and the H.264 file is written by ffmpeg directly from the filter graph.
Filter graph: color source -> geq (background) [-> noise] -> geq (objects, topmost last)
-> libx264 yuv420p.
"""
import subprocess
from math import cos, sin

from world import FFMPEG, FPS, RGB, STEP

# Per-shape inside tests in radius units; ld(0) = dx, ld(1) = dy (y grows downwards).
INSIDE = {
    'circle': 'lte(hypot(ld(0),ld(1)),1)',
    'square': 'lte(max(abs(ld(0)),abs(ld(1))),0.78)',
    'diamond': 'lte(abs(ld(0))+abs(ld(1)),1)',
    'triangle': 'lte(ld(1),0.6)*lte(abs(ld(0)),0.56*(ld(1)+1))',
    'star': 'lte(hypot(ld(0),ld(1)),0.4+0.6*pow(abs(cos(2.5*atan2(ld(0),-ld(1)))),1.5))',
}


def _obj_test(obj, T, W, H):
    """geq expression: 1 where obj covers the pixel centre in frame N, else 0."""
    u = f'(N/{T - 1})' if T > 1 else '0'
    sx, sy = STEP.get(obj['motion'], (0, 0))
    cx = f"(({obj['x']:.6f}+{sx * obj['speed']:.6f}*{u})*{W})"
    cy = f"(({obj['y']:.6f}+{sy * obj['speed']:.6f}*{u})*{H})"
    r = f"({obj['size']:.6f}*{min(W, H)})"
    if obj['motion'] in ('growing', 'shrinking'):
        r = f"({r}*(1+{obj['speed'] - 1:.6f}*{u}))"
    return f"st(0,(X+0.5-{cx})/{r});st(1,(Y+0.5-{cy})/{r});{INSIDE[obj['shape']]}"


def _background(bg, chan):
    """geq expression of the background in channel chan (0 r, 1 g, 2 b)."""
    if bg['kind'] != 'gradient':
        return str(bg['rgb'][chan])
    a = bg['angle']
    c, s = cos(a), sin(a)
    span = 0.5 * (abs(c) + abs(s))
    p = (f"clip(((X+0.5)/W-0.5)*{c / span * 0.5:.6f}+((Y+0.5)/H-0.5)*{s / span * 0.5:.6f}"
         f"+0.5,0,1)")
    lo, hi = bg['rgb'][chan], bg['rgb2'][chan]
    return f"({lo}+{hi - lo}*{p})"


def filter_graph(scene, W, H):
    """The -vf graph that turns a black color source into the scene's frames."""
    bg = scene['background']
    T = scene['n_frames']
    chans = ('r', 'g', 'b')
    steps = ['format=gbrp',
             'geq=' + ':'.join(f"{ch}='{_background(bg, k)}'" for k, ch in enumerate(chans))]
    if bg['noise'] > 0:
        strength, seed = max(1, round(bg['noise'])), bg['seed'] % 65536
        steps.append(f'noise=alls={strength}:allf=t:all_seed={seed}')
    exprs = []
    for k, ch in enumerate(chans):
        e = f'{ch}(X,Y)'
        for obj in scene['objects']:      # later objects wrap earlier ones: topmost wins
            e = f"if({_obj_test(obj, T, W, H)},{RGB[obj['colour']][k]},{e})"
        exprs.append(f"{ch}='{e}'")
    steps.append('geq=' + ':'.join(exprs))
    return ','.join(steps)


def render_geq(scene, W, H, path, crf, threads=1):
    """Writes scene at W x H as an H.264 (yuv420p, crf) mp4 at path, drawn by geq.

    threads: geq's slice threads (the pixels do not depend on it); x264 runs on one
    thread so the file does not either."""
    T = scene['n_frames']
    cmd = FFMPEG + ['-y', '-f', 'lavfi', '-i',
                    f"color=c=black:s={W}x{H}:r={FPS}",
                    '-vf', filter_graph(scene, W, H), '-frames:v', str(T),
                    '-filter_threads', str(threads), '-threads', '1',
                    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', str(crf),
                    '-pix_fmt', 'yuv420p', '-movflags', '+faststart', str(path)]
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.decode(errors='replace')}")
