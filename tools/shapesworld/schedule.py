"""The learning-rate schedule of every ShapesWorld training loop: a linear warm-up over warm
steps, then half a cosine from peak down to floor * peak at the last step."""
import math


def lr_at(step, total, peak, warm=100, floor=0.0):
    if step < warm:
        return peak * (step + 1) / warm
    x = min(1.0, (step - warm) / max(1, total - warm))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * x)))
