"""ShapesWorld sound: the soundtrack of a scene, so that audio carries the same facts as the caption.

Every object contributes one voice: its shape picks the timbre, its colour the base pitch and its
motion a modulation (pitch glide, tremolo rate or loudness ramp). Position, size and speed are not
heard, so scenes with the same canonical caption sound alike; the seed only varies phases, a
little pitch and gain, and a faint noise floor. numpy only.
"""
import numpy as np

# Base pitch per colour (Hz): a ratio of about 1.56 (7.7 semitones) between neighbours keeps them
# apart on a 64-bin mel scale even with the +-3 semitone glides and the pitch jitter below.
PITCH = {'red': 160.0, 'green': 250.0, 'blue': 390.0, 'yellow': 610.0, 'purple': 950.0,
         'white': 1480.0}
GLIDE_OCTAVES = 0.25            # up / down: glide from 3 semitones below the base pitch to 3 above
TREMOLO_HZ = {'left': 3.0, 'right': 7.0}
TREMOLO_DEPTH = 0.75
RAMP_DB = 30.0                  # growing / shrinking: a 30 dB crescendo / decrescendo
CHIRP_HZ = 5.0                  # triangle: five rising one-octave chirps per second
BURST_HZ = 12.0                 # star: twelve noise bursts per second
BELL_HZ = 2.0                   # diamond: a bell struck twice per second
MAX_PARTIAL_HZ = 7000.0         # keeps additive voices below Nyquist at 16 kHz
PEAK = 0.9                      # peak level after normalisation
NOISE_DB = -45.0                # noise floor relative to the mix RMS
PITCH_JITTER = 0.015            # +-1.5 % (a quarter semitone): variation, not a different note
GAIN_JITTER_DB = 1.5


def _phase(freq, sr, phase0):
    """Running phase (radians) of a sine whose instantaneous frequency is freq [N] Hz."""
    return phase0 + 2.0 * np.pi * np.cumsum(freq) / sr


def _circle(freq, t, sr, rng):
    return np.sin(_phase(freq, sr, rng.uniform(0, 2 * np.pi)))


def _square(freq, t, sr, rng):
    # Band-limited square wave: odd harmonics with 1/k amplitudes, only those under the cap.
    ph = _phase(freq, sr, rng.uniform(0, 2 * np.pi))
    top = freq.max()
    out = np.zeros_like(ph)
    for k in range(1, 16, 2):
        if k * top >= MAX_PARTIAL_HZ:
            break
        out += np.sin(k * ph) / k
    return out


def _triangle(freq, t, sr, rng):
    # A train of chirps, each sweeping one octave up from the (moving) base pitch.
    offset = rng.uniform(0, 1)
    frac = (t * CHIRP_HZ + offset) % 1.0
    ph = _phase(freq * 2.0 ** frac, sr, rng.uniform(0, 2 * np.pi))
    env = np.minimum(frac / 0.05, 1.0) * np.exp(-3.0 * frac)
    return np.sin(ph) * env


def _star(freq, t, sr, rng):
    # Noise bursts: a band of inharmonic partials around the base pitch (narrow-band noise that
    # still follows the colour's pitch and the glide), gated by short decaying bursts.
    ratios = np.exp(rng.uniform(np.log(0.75), np.log(1.33), 10))
    band = np.zeros_like(t)
    for r in ratios:
        band += np.sin(_phase(freq * r, sr, rng.uniform(0, 2 * np.pi)))
    frac = (t * BURST_HZ + rng.uniform(0, 1)) % 1.0
    return band * np.exp(-frac / 0.18)     # decay: 18 % of the 83 ms burst period


def _diamond(freq, t, sr, rng):
    # FM bell: inharmonic modulator (ratio 1.41) whose index decays after each strike; the ring
    # lasts long enough (175 ms time constant) for tremolos and glides to show between strikes.
    frac = (t * BELL_HZ + rng.uniform(0, 1)) % 1.0
    env = np.exp(-frac / 0.35)
    ph = _phase(freq, sr, rng.uniform(0, 2 * np.pi))
    return np.sin(ph + 3.0 * env * np.sin(1.41 * ph)) * env


TIMBRE = {'circle': _circle, 'square': _square, 'triangle': _triangle, 'star': _star,
          'diamond': _diamond}


def _pitch_track(motion, u):
    """Multiplier on the base pitch over the clip (u in [0,1])."""
    if motion == 'up':
        return 2.0 ** (GLIDE_OCTAVES * (2.0 * u - 1.0))
    if motion == 'down':
        return 2.0 ** (-GLIDE_OCTAVES * (2.0 * u - 1.0))
    return np.ones_like(u)


def _envelope(motion, u, t, rng):
    """Amplitude envelope carrying the non-pitch motions."""
    if motion in TREMOLO_HZ:
        lfo = np.sin(2.0 * np.pi * TREMOLO_HZ[motion] * t + rng.uniform(0, 2 * np.pi))
        return 1.0 - TREMOLO_DEPTH * (0.5 + 0.5 * lfo)
    if motion == 'growing':
        return 10.0 ** (-RAMP_DB * (1.0 - u) / 20.0)
    if motion == 'shrinking':
        return 10.0 ** (-RAMP_DB * u / 20.0)
    return np.ones_like(u)


def object_voice(obj, t, u, sr, rng):
    """One object's voice [N]: unit-RMS timbre at its colour's pitch, shaped by its motion."""
    base = PITCH[obj['colour']] * (1.0 + rng.uniform(-PITCH_JITTER, PITCH_JITTER))
    freq = base * _pitch_track(obj['motion'], u)
    voice = TIMBRE[obj['shape']](freq, t, sr, rng)
    voice = voice / (np.sqrt(np.mean(voice ** 2)) + 1e-12)
    gain = 10.0 ** (rng.uniform(-GAIN_JITTER_DB, GAIN_JITTER_DB) / 20.0)
    return voice * gain * _envelope(obj['motion'], u, t, rng)


def scene_audio(scene, sr=16000, seed=0):
    """float32 [N] mono waveform of n_frames / fps seconds, peak-normalised to PEAK."""
    rng = np.random.default_rng(seed)
    n = int(round(scene['n_frames'] / scene['fps'] * sr))
    t = np.arange(n) / sr
    u = np.linspace(0.0, 1.0, n)
    mix = np.zeros(n)
    for obj in scene['objects']:
        mix += object_voice(obj, t, u, sr, rng)
    rms = np.sqrt(np.mean(mix ** 2)) + 1e-12
    mix += rng.standard_normal(n) * rms * 10.0 ** (NOISE_DB / 20.0)
    return (mix * (PEAK / (np.abs(mix).max() + 1e-12))).astype(np.float32)
