"""An image captioner: a small CNN encoder, an LSTM decoder with attention.

    encoder    images (B, 3, 32, 32) to a grid of 8x8 = 64 vectors, each
               describing a 4x4-pixel cell: its form from three
               convolutions over the picture's brightness (5x5 stride 2,
               3x3 stride 2, 3x3; each cell sees the 17x17 pixels around
               it), its colour from a 1x1 convolution averaged over the
               cell; plus a
               learned vector per cell (a position embedding), so that a
               cell can say *where* as well as *what*
    decoder    one LSTMCell step per word. At step t the previous state
               h_{t-1} asks the grid where to look (additive attention):
                   a_t = softmax over cells of v . tanh(W_q h_{t-1} + W_k grid_j)
                   z_t = sum_j a_tj grid_j                      (the context)
               the LSTM reads [embed(word_{t-1}), z_t]. Because z_t goes
               into the state, the next step's query knows where the last
               one looked.
    output     in two parts: what *kind* of word comes next (article, size,
               colour, shape, "left", "of" or the end) from [h_t, z_t], and
               *which* word of that kind from z_t alone:
                   P(word) = P(kind | h_t, z_t) P(word | kind, z_t)
               The state knows the words written so far; if it also chose
               among the shapes, it would learn which shapes each colour
               came with in training ("green" was never followed by
               "cross") and overrule the picture for a pair it never saw.
               Choosing the colour and the shape from the picture alone
               leaves it nothing to memorise.
    baseline   attention=False: z_t is the grid's mean at every step, one
               summary of the whole picture (the same decoder otherwise)

The state starts from the grid's mean (h_0 = tanh(W_h mean), c_0 alike).
Training is teacher-forced (word_{t-1} is the true word); `generate` feeds
back its own greedy choices.
"""
import numpy as np

from microseq.nn.attention import AdditiveAttention
from microseq.nn.conv import Conv2d
from microseq.nn.layers import Embedding, Linear
from microseq.nn.module import Module, Parameter
from microseq.nn.recurrent import LSTMCell
from microseq.ops import concat, cross_entropy, log, log_softmax, relu, stack, tanh, transpose
from microseq.scope import scope
from microseq.tensor import DEFAULT_DTYPE, Tensor, default_rng, no_grad


class ConvEncoder(Module):
    """(B, 3, 32, 32) images -> (B, 64, D) grid, from two streams of convolutions.

    form    sees each pixel's brightness only, max(r, g, b), which is about the
            same for every colour here: conv 5x5/2, 3x3/2, 3x3, each + ReLU
    colour  sees one pixel at a time: conv 1x1 + ReLU, averaged over each 4x4 cell

    A single stream sees colour and form together and learns them together:
    trained on green circles and red crosses, it has no feature for a green
    cross. Two streams keep "which form" blind to colour and "which colour"
    (nearly) blind to form, so a pair never seen is two features it knows.
    """

    def __init__(self, channels=(16, 32, 32), colour_channels=8):
        c1, c2, c3 = channels
        self.form = [Conv2d(1, c1, 5, stride=2, padding=2),
                     Conv2d(c1, c2, 3, stride=2, padding=1), Conv2d(c2, c3, 3, padding=1)]
        self.colour = Conv2d(3, colour_channels, 1)
        self.size = c3 + colour_channels

    def forward(self, images):
        images = np.asarray(images.data if isinstance(images, Tensor) else images)
        with scope("encoder"):
            # pixels centred on 0 (from [0, 1] to [-1, 1]): training is much faster
            x = Tensor(2 * images.max(axis=1, keepdims=True) - 1)
            for layer in self.form:
                x = relu(layer(x))
            colour = relu(self.colour(Tensor(2 * images - 1)))   # (B, C, 32, 32)
            B, C, H, W = colour.shape
            colour = colour.reshape(B, C, H // 4, 4, W // 4, 4).mean(axis=(3, 5))
            x = concat([x, colour], axis=1)
            B, D, H, W = x.shape
            return transpose(x.reshape(B, D, H * W), (0, 2, 1))  # one row per cell


class Captioner(Module):
    """CNN encoder + LSTM decoder, with attention over the grid or (attention=False) its mean.

    word_kinds (V,) gives each word id its kind (an int): words of one kind
    compete for the same place in a caption (the colours, say).
    """

    def __init__(self, word_kinds, attention=True, channels=(16, 32, 32), embed_size=16,
                 hidden_size=64, attention_size=16):
        word_kinds = np.asarray(word_kinds)
        vocab_size, kinds = len(word_kinds), int(word_kinds.max()) + 1
        self.members = np.eye(kinds, dtype=DEFAULT_DTYPE)[word_kinds]  # (V, K): word in kind
        self.encoder = ConvEncoder(channels)
        D = self.encoder.size
        self.position = Parameter(default_rng().normal(0, 0.1, (64, D)).astype(DEFAULT_DTYPE))
        self.init_h, self.init_c = Linear(D, hidden_size), Linear(D, hidden_size)
        self.embed = Embedding(vocab_size, embed_size)
        self.cell = LSTMCell(embed_size + D, hidden_size)
        H = hidden_size
        for b in (self.cell.bias_ih, self.cell.bias_hh):
            b.data[H:2 * H] = 1.0  # forget gates start open (sigmoid(2) ~ 0.88 in all)
        self.attention = AdditiveAttention(hidden_size, D, attention_size) if attention else None
        self.kind_out = Linear(hidden_size + D, kinds)
        self.word_out = Linear(D, vocab_size)

    def start(self, images):
        """What every step reads: the grid (B, 64, D), its mean (B, D) and
        the grid's projected keys (the same at every step, so made once);
        and the initial state (h, c)."""
        grid = self.encoder(images) + self.position
        mean = grid.mean(axis=1)
        keys = None if self.attention is None else self.attention.key_proj(grid)
        return (grid, mean, keys), (tanh(self.init_h(mean)), tanh(self.init_c(mean)))

    def step(self, words, image, state):
        """One word for a batch: words (B,) ids of the previous words, image
        what start() made of the pictures. Returns log-probabilities (B, V), the new
        state and the attention weights (B, 64) (None without attention)."""
        grid, mean, keys = image
        if self.attention is None:
            context, weights = mean, None
        else:
            context, weights = self.attention(state[0], grid, grid, projected_keys=keys)
        h, c = self.cell(concat([self.embed(words), context], axis=-1), state)
        return self.log_probs(h, context), (h, c), weights

    def log_probs(self, h, context):
        """log P(word) = log P(kind | h, z) + log P(word | kind, z), (B, V)."""
        members = self.members.astype(context.dtype)
        kind = log_softmax(self.kind_out(concat([h, context], axis=-1)))       # (B, K)
        scores = self.word_out(context)                                          # (B, V)
        scores = scores - scores.data.max(axis=-1, keepdims=True)  # a constant: no overflow
        within = scores - log((scores.exp() @ members) @ members.T)  # softmax inside each kind
        return within + kind @ members.T

    def forward(self, images, dec_in):
        """Teacher forcing: log-probabilities (B, T, V) of the word after each of dec_in (B, T)."""
        image, state = self.start(images)
        logits = []
        for t in range(dec_in.shape[1]):
            with scope(f"t={t}"):
                step_logits, state, _ = self.step(dec_in[:, t], image, state)
            logits.append(step_logits)
        return stack(logits, axis=1)

    def loss(self, images, dec_in, target):
        """Mean cross-entropy over every position, the PADs that end captions included."""
        return cross_entropy(self(images, dec_in), target)

    def generate(self, images, start_id, steps, return_weights=False):
        """Greedy decoding: ids (B, steps), and with return_weights the
        attention of each step too, (B, steps, 64)."""
        with no_grad():
            image, state = self.start(images)
            words = np.full(len(images), start_id, dtype=np.int64)
            out, weights = [], []
            for _ in range(steps):
                logits, state, w = self.step(words, image, state)
                words = logits.data.argmax(axis=-1)
                out.append(words)
                weights.append(w)
        ids = np.stack(out, axis=1)
        return (ids, np.stack([w.data for w in weights], axis=1)) if return_weights else ids
