"""Generated scenes: reproducible, captions true to the pictures, unseen pairs held out."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microseq.data import PAD, START
from microseq.data import scenes as S

pytestmark = pytest.mark.data


def test_a_seed_gives_the_same_scenes_to_the_last_bit():
    a, b = S.generate(20, 7), S.generate(20, 7)
    assert np.array_equal(a.images, b.images) and a.captions == b.captions
    assert np.array_equal(a.layout, b.layout)
    assert S.generate(20, 8).captions != a.captions


@given(seed=st.integers(0, 2**32 - 1))
def test_captions_name_the_shapes_drawn_from_left_to_right(seed):
    scenes = S.generate(6, seed)
    for image, caption, shapes, layout in zip(scenes.images, scenes.captions, scenes.shapes,
                                              scenes.layout, strict=True):
        assert 1 <= len(shapes) <= 3
        assert caption == " left of ".join(f"a {s.size} {s.colour} {s.shape}" for s in shapes)
        centres = [s.centre_x for s in shapes]
        assert all(b - a >= S.GAP for a, b in zip(centres, centres[1:]))
        assert len({(s.colour, s.shape) for s in shapes}) == len(shapes)
        for k, s in enumerate(shapes):
            pixels = layout == k
            assert pixels.sum() == S.mask(s.shape, s.size).sum()  # nothing drawn over it
            rows, cols = np.nonzero(pixels)
            assert rows.min() >= s.top and cols.max() < s.left + s.side
            colour = image[:, pixels].mean(axis=1)
            assert np.abs(colour - S.COLOURS[s.colour]).max() <= 0.1 + 1e-6
        assert image[:, layout == -1].max(initial=0) <= 0.08  # background: noise only


def test_unseen_pairs_stay_out_of_training_and_into_every_unseen_scene():
    data = S.splits(200, 50, 0)
    for split in ("train", "test"):
        assert not any((s.colour, s.shape) in S.UNSEEN
                       for shapes in data[split].shapes for s in shapes)
    assert all(any((s.colour, s.shape) in S.UNSEEN for s in shapes)
               for shapes in data["unseen"].shapes)


def test_encoded_captions_end_with_pad_and_teacher_force():
    vocab = S.caption_vocab()
    captions = S.generate(30, 1).captions
    dec_in, target = S.encode_captions(captions, vocab)
    assert target.shape == (30, 17) and dec_in.shape == target.shape
    assert np.all(dec_in[:, 0] == vocab.stoi[START])
    assert np.array_equal(dec_in[:, 1:], target[:, :-1])
    for row, caption in zip(target, captions, strict=True):
        words = vocab.decode(row)
        n = len(caption.split())
        assert words[:n] == caption.split() and set(words[n:]) == {PAD}
