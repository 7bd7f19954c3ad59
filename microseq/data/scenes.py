"""Generated scenes to caption: small RGB pictures of one to three shapes.

    scene     a black 32x32 picture with 1-3 shapes (circle, square, triangle,
              cross) in 4 colours and 2 sizes, at random places, not touching
    caption   the shapes from left to right, joined by "left of":
              "a small red circle left of a big blue square"

Everything is drawn from a seeded numpy Generator, so a seed gives the same
pictures to the last bit. The colour-shape pairs of `UNSEEN` never appear in
training scenes: the "unseen" split puts at least one of them into every
scene, to test whether a captioner has learned colour and shape apart or
only the pairs it met.
"""
import functools
from dataclasses import dataclass

import numpy as np

from microseq.data.tasks import PAD, START
from microseq.data.vocab import WordVocab

SIZE = 32
# Every colour has a channel at full strength: by brightness alone, max(r, g, b),
# the colours look alike.
COLOURS = {"red": (1.0, 0.15, 0.1), "green": (0.15, 1.0, 0.2), "blue": (0.2, 0.35, 1.0),
           "yellow": (1.0, 0.9, 0.15)}
SHAPES = ("circle", "square", "triangle", "cross")
SIDES = {"small": 10, "big": 14}  # the side of a shape's bounding square, in pixels
UNSEEN = (("red", "triangle"), ("green", "cross"), ("blue", "circle"), ("yellow", "square"))
SEEN = tuple((c, s) for c in COLOURS for s in SHAPES if (c, s) not in UNSEEN)
RELATION = "left of"
GAP = 6  # pixels between the centres of two shapes, across at least
WORDS_PER_OBJECT = 6  # "a size colour shape left of": object k's words start at 6k


@dataclass(frozen=True)
class Shape:
    size: str
    colour: str
    shape: str
    top: int
    left: int

    @property
    def side(self):
        return SIDES[self.size]

    @property
    def centre_x(self):
        return self.left + self.side / 2

    def phrase(self):
        return f"a {self.size} {self.colour} {self.shape}"


@dataclass
class Scenes:
    """A batch of scenes, shapes ordered left to right in each.

    images (N, 3, SIZE, SIZE) float32 in [0, 1]; captions, a list of N
    strings; shapes, N tuples of Shape; layout (N, SIZE, SIZE) int8, the
    index (left to right) of the shape each pixel shows, -1 for background.
    """
    images: np.ndarray
    captions: list
    shapes: list
    layout: np.ndarray

    def __len__(self):
        return len(self.captions)


@functools.cache
def mask(shape, size):
    """The pixels of a shape ("circle", ...) of a size ("small", "big") inside
    its bounding square: (side, side) bool."""
    n = SIDES[size]
    y, x = np.mgrid[:n, :n] + 0.5  # pixel centres
    if shape == "circle":
        return (x - n / 2) ** 2 + (y - n / 2) ** 2 <= (n / 2) ** 2
    if shape == "square":
        return np.ones((n, n), bool)
    if shape == "triangle":  # apex at the top, base along the bottom
        return np.abs(x - n / 2) <= y / 2
    arm = n / 6  # cross: two bars a third of the side wide
    return (np.abs(x - n / 2) <= arm) | (np.abs(y - n / 2) <= arm)


def _place(rng, count, tries=64):
    """Bounding squares (top, left, size) for `count` shapes that keep a pixel
    apart and whose centres differ by GAP+ pixels across, so "left of" is clear.
    Each shape takes the first of `tries` random places that fits."""
    while True:
        placed = []
        for size in rng.choice(list(SIDES), count):
            n = SIDES[size]
            top, left = rng.integers(0, SIZE - n + 1, (2, tries))
            fits = np.ones(tries, bool)
            for t, x, s in placed:
                m = SIDES[s]
                apart = (top + n < t) | (t + m < top) | (left + n < x) | (x + m < left)
                fits &= apart & (np.abs(left + n / 2 - x - m / 2) >= GAP)
            if not fits.any():
                break  # no room left: draw the sizes again
            k = np.argmax(fits)
            placed.append((int(top[k]), int(left[k]), str(size)))
        if len(placed) == count:
            return placed


def generate(n, seed, combos=SEEN, must_include=(), counts=(1, 2, 3)):
    """n scenes from `seed`: each has a random number of shapes from `counts`,
    with distinct colour-shape pairs from `combos`; with `must_include`, one
    shape of every scene has a pair from it."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 0.08, (n, 3, SIZE, SIZE)).astype(np.float32)  # a little noise
    layout = np.full((n, SIZE, SIZE), -1, np.int8)
    captions, all_shapes = [], []
    for i in range(n):
        count = int(rng.choice(counts))
        pool = list(combos)
        pairs = []
        if must_include:
            pairs.append(must_include[rng.integers(len(must_include))])
        while len(pairs) < count:
            pair = pool[rng.integers(len(pool))]
            if pair not in pairs:
                pairs.append(pair)
        boxes = _place(rng, count)
        shapes = sorted((Shape(size, c, s, top, left)
                         for (c, s), (top, left, size) in zip(pairs, boxes, strict=True)),
                        key=lambda sh: sh.centre_x)
        for k, sh in enumerate(shapes):
            inside = mask(sh.shape, sh.size)
            colour = np.clip(np.array(COLOURS[sh.colour]) + rng.uniform(-0.1, 0.1, 3), 0, 1)
            window = (slice(sh.top, sh.top + sh.side), slice(sh.left, sh.left + sh.side))
            images[i][:, window[0], window[1]][:, inside] = colour[:, None]
            layout[i][window][inside] = k
        captions.append(f" {RELATION} ".join(sh.phrase() for sh in shapes))
        all_shapes.append(tuple(shapes))
    return Scenes(images, captions, all_shapes, layout)


def splits(n_train, n_test, seed):
    """{"train", "test", "unseen"}: training scenes and held-out scenes of the
    same pairs, each from its own stream of `seed`, and n_test scenes that
    each contain at least one pair of UNSEEN."""
    return {"train": generate(n_train, [seed, 0]),
            "test": generate(n_test, [seed, 1]),
            "unseen": generate(n_test, [seed, 2], combos=SEEN + UNSEEN, must_include=UNSEEN)}


def caption_vocab():
    """Every word the grammar can write, after PAD (which ends a caption) and START."""
    words = ["a", *SIDES, *COLOURS, *SHAPES, *RELATION.split()]
    return WordVocab(words, unk=None, specials=(PAD, START))


def word_kinds(vocab):
    """(V,) ints: one kind for the sizes, one for the colours, one for the
    shapes, and a kind of its own for every other word."""
    groups = [tuple(SIDES), tuple(COLOURS), SHAPES]
    kinds, own = np.empty(len(vocab), np.int64), len(groups)
    for i, word in enumerate(vocab.itos):
        kinds[i] = next((k for k, group in enumerate(groups) if word in group), own)
        own += kinds[i] == own
    return kinds


def encode_captions(captions, vocab):
    """(dec_in, target), int64 (N, L): target is each caption's words and then
    PAD up to the longest caption the grammar writes plus one (so every caption
    ends with a PAD); dec_in is START followed by target[:, :-1]."""
    length = 3 * WORDS_PER_OBJECT - 2 + 1
    target = np.full((len(captions), length), vocab.stoi[PAD], np.int64)
    for row, caption in enumerate(captions):
        ids = vocab.encode(caption.split())
        target[row, :len(ids)] = ids
    dec_in = np.empty_like(target)
    dec_in[:, 0] = vocab.stoi[START]
    dec_in[:, 1:] = target[:, :-1]
    return dec_in, target
