"""Two interleaving half-moons: the toy classification data of lesson 0 and
of the scalar benchmark (micrograd's demo, sklearn's make_moons)."""
import math


def make_moons(n, rng, noise=0.1):
    """n points (x, y, label), alternately on the upper moon (label -1) and
    the lower one (label +1), with Gaussian noise of std `noise`; `rng` is a
    random.Random."""
    points = []
    for i in range(n):
        angle = math.pi * rng.random()
        if i % 2:
            x, y, label = 1 - math.cos(angle), 0.5 - math.sin(angle), 1
        else:
            x, y, label = math.cos(angle), math.sin(angle), -1
        points.append((x + rng.gauss(0, noise), y + rng.gauss(0, noise), label))
    return points
