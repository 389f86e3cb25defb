"""ShapesWorld IMU traces: 4 s of 6-axis motion (accelerometer m/s^2, gyroscope rad/s at 100 Hz)
for a handful of activities, each with its canonical caption (IMU_CAPTIONS).

Signals are built in a body frame (x forward, y left, z up) as the specific force an accelerometer
reads (gravity included: +9.81 on z at rest, 0 in free fall) and the angular rate, then turned
into a randomly oriented device frame (gravity mostly on one signed device axis, tilted up to
20 degrees, random heading), plus white noise and constant biases. Cadences are typical human
ones; the two speeds of an activity are kept apart so that every caption is recognisable.
numpy only.
"""
import itertools

import numpy as np

RATE = 100                      # Hz
SECONDS = 4
LENGTH = RATE * SECONDS         # samples per trace
G = 9.81

IMU_CAPTIONS = [
    'standing still',
    'walking slowly', 'walking fast',
    'running slowly', 'running fast',
    'jumping slowly', 'jumping fast',
    'turning left while standing', 'turning left while walking',
    'turning right while standing', 'turning right while walking',
    'climbing stairs slowly', 'climbing stairs fast',
]

# Steps (or jumps) per second for each paced caption; +-5 % jitter is applied on top.
CADENCE = {
    'walking slowly': 1.5, 'walking fast': 2.2,
    'running slowly': 2.6, 'running fast': 3.2,
    'jumping slowly': 1.0, 'jumping fast': 1.7,
    'climbing stairs slowly': 1.1, 'climbing stairs fast': 1.7,
}
TURN_WALK_CADENCE = 1.8
WALK_SPEED = 1.3                # m/s, for the centripetal term of a walking turn
MAX_TILT = np.radians(20.0)

# The 24 proper rotations that map axes onto signed axes: which device axis gravity lies on.
AXIS_ROTATIONS = [m for m in (np.diag(s)[list(p)] for p in itertools.permutations(range(3))
                              for s in itertools.product((1.0, -1.0), repeat=3))
                  if np.linalg.det(m) > 0]


def _jit(rng, x, rel):
    return x * (1.0 + rng.uniform(-rel, rel))


def _contact_force(frac, contact):
    """Vertical specific force of hopping gaits: a sin^2 push while the foot is down, 0 in
    flight, scaled so that its mean over a cycle is g (no net vertical acceleration)."""
    push = np.where(frac < contact, np.sin(np.pi * frac / contact) ** 2, 0.0)
    return G * push / (contact / 2.0)


def _walk(t, c, amp, rng):
    """Walking: vertical bounce per step with a heel-strike harmonic, fore-aft surge, lateral
    sway at stride rate (half the step rate); pitch / roll / yaw oscillations."""
    th = 2 * np.pi * c * t + rng.uniform(0, 2 * np.pi)
    acc = np.stack([0.5 * amp * np.sin(th + 0.5),
                    0.35 * amp * np.sin(th / 2),
                    amp * (np.cos(th) + 0.35 * np.cos(2 * th + 0.6))])
    gyr = np.stack([0.12 * amp * np.sin(th / 2), 0.15 * amp * np.sin(th), 0.08 * amp * np.sin(th / 2 + 1.0)])
    return acc, gyr


def _activity(caption, t, rng):
    """Body-frame (acceleration without gravity, angular rate), each [3, L]."""
    zero = np.zeros((3, len(t)))
    if caption == 'standing still':
        sway = 0.03 * np.sin(2 * np.pi * _jit(rng, 0.3, 0.3) * t + rng.uniform(0, 2 * np.pi))
        return zero + sway, zero + 0.2 * sway
    if caption.startswith('walking'):
        amp = _jit(rng, 1.5 if 'slowly' in caption else 3.0, 0.15)
        return _walk(t, _jit(rng, CADENCE[caption], 0.05), amp, rng)
    if caption.startswith(('running', 'jumping')):
        c = _jit(rng, CADENCE[caption], 0.05)
        frac = (c * t + rng.uniform(0, 1)) % 1.0
        running = caption.startswith('running')
        # Running keeps the torso partly cushioned (about half of the full flight / landing
        # swing, peaks near 3-4 g); jumps in place are full free fall and landing.
        contact = {'running slowly': 0.4, 'running fast': 0.33,
                   'jumping slowly': 0.5, 'jumping fast': 0.4}[caption]
        depth = (0.45 if 'slowly' in caption else 0.55) if running else 1.0
        az = _jit(rng, depth, 0.1) * (_contact_force(frac, contact) - G)
        th = 2 * np.pi * frac
        fwd = _jit(rng, 3.0, 0.15) if running else _jit(rng, 0.4, 0.3)
        acc = np.stack([fwd * np.sin(th), (1.2 if running else 0.3) * np.sin(th / 2 + 0.3), az])
        gyr = (np.stack([0.5 * np.sin(th / 2), 1.1 * np.sin(th), 0.4 * np.sin(th / 2 + 1.0)]) if running
               else np.stack([0.05 * np.sin(th), 0.3 * np.sin(th), 0.02 * np.sin(th / 2)]))
        return acc, gyr
    if caption.startswith('turning'):
        sign = 1.0 if 'left' in caption else -1.0       # left = counter-clockwise seen from above
        walking = caption.endswith('walking')
        rate = _jit(rng, 0.7 if walking else 1.1, 0.25)
        t0, t1 = rng.uniform(0.0, 0.6), rng.uniform(SECONDS - 0.6, SECONDS)
        ramp = np.clip(np.minimum(t - t0, t1 - t) / 0.3, 0.0, 1.0)
        yaw = sign * rate * (0.5 - 0.5 * np.cos(np.pi * ramp))
        if walking:
            acc, gyr = _walk(t, _jit(rng, TURN_WALK_CADENCE, 0.05), _jit(rng, 2.2, 0.15), rng)
            acc[1] += WALK_SPEED * yaw                  # centripetal, towards the inside of the turn
        else:
            th = 2 * np.pi * _jit(rng, 1.5, 0.1) * t + rng.uniform(0, 2 * np.pi)
            acc = np.stack([0.1 * np.sin(th), 0.2 * np.sin(th / 2), 0.4 * np.sin(th)])
            gyr = np.stack([0.03 * np.sin(th / 2), 0.05 * np.sin(th), zero[2]])
        gyr[2] += yaw
        return acc, gyr
    # Climbing stairs: a strong asymmetric upward push in the first 40 % of each step, then a
    # slow settle (zero mean: the push averages 0.2); less fore-aft surge than walking, more pitching.
    c = _jit(rng, CADENCE[caption], 0.05)
    frac = (c * t + rng.uniform(0, 1)) % 1.0
    push = np.where(frac < 0.4, np.sin(np.pi * frac / 0.4) ** 2, 0.0)
    amp = _jit(rng, 3.0 if 'slowly' in caption else 4.5, 0.15)
    th = 2 * np.pi * frac
    acc = np.stack([0.3 * amp * np.sin(th), 0.25 * amp * np.sin(th / 2), 0.5 * amp * (push / 0.2 - 1.0)])
    gyr = np.stack([0.1 * amp * np.sin(th / 2), 0.2 * amp * np.sin(th + 0.8), 0.05 * amp * np.sin(th / 2)])
    return acc, gyr


def _orientation(rng):
    """Device-from-body rotation: random heading, gravity on a random signed device axis, tilt."""
    yaw = rng.uniform(0, 2 * np.pi)
    rz = np.array([[np.cos(yaw), -np.sin(yaw), 0.0], [np.sin(yaw), np.cos(yaw), 0.0], [0.0, 0.0, 1.0]])
    axis = rng.standard_normal(3)
    axis /= np.linalg.norm(axis)
    ang = rng.uniform(0, MAX_TILT)
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    tilt = np.eye(3) + np.sin(ang) * k + (1 - np.cos(ang)) * (k @ k)       # Rodrigues
    return tilt @ AXIS_ROTATIONS[rng.integers(len(AXIS_ROTATIONS))] @ rz


def imu_trace(caption, rng):
    """float32 [6, LENGTH] trace (acc xyz, gyro xyz in the device frame) of one caption."""
    t = np.arange(LENGTH) / RATE
    acc, gyr = _activity(caption, t, rng)
    acc = acc + np.array([0.0, 0.0, G])[:, None]
    rot = _orientation(rng)
    # Sensor errors: constant bias per axis plus white noise of a per-device level.
    acc = rot @ acc + rng.uniform(-0.1, 0.1, (3, 1)) + rng.uniform(0.02, 0.06) * rng.standard_normal(acc.shape)
    gyr = (rot @ gyr + rng.uniform(-0.02, 0.02, (3, 1))
           + rng.uniform(0.005, 0.015) * rng.standard_normal(gyr.shape))
    return np.concatenate([acc, gyr]).astype(np.float32)


def sample_imu(rng):
    """(float32 [6, 400] trace, caption): a caption drawn uniformly from IMU_CAPTIONS."""
    caption = IMU_CAPTIONS[rng.integers(len(IMU_CAPTIONS))]
    return imu_trace(caption, rng), caption
