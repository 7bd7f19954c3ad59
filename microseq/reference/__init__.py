"""Hand-derived numpy forward and backward passes for every model the lessons build.

They are the derivations the lessons teach, the second witness in the
gradient tests (autograd == reference == finite differences) and the speed
baseline of the benchmarks. Only numpy is used; shapes, weight layouts and
gate orders follow PyTorch, and every array keeps the dtype of its inputs.
"""
from microseq.reference.attention import dot_attention_backward, dot_attention_forward
from microseq.reference.gru import gru_backward, gru_forward
from microseq.reference.lm import (
    gru_lm_loss_and_grads,
    gru_lm_step,
    init_lm_params,
    lstm_lm_loss_and_grads,
    lstm_lm_step,
    rnn_lm_loss_and_grads,
    rnn_lm_step,
)
from microseq.reference.lstm import lstm_backward, lstm_forward
from microseq.reference.rnn import rnn_backward, rnn_forward
from microseq.reference.seq2seq import peeky_loss_and_grads
from microseq.reference.transformer import (
    attention_backward,
    attention_forward,
    encoder_block_backward,
    encoder_block_forward,
    layer_norm_backward,
    layer_norm_forward,
    transformer_lm_loss_and_grads,
    transformer_lm_step,
)
from microseq.reference.word2vec import (
    cbow_ns_loss_and_grads,
    scatter_add_rows,
    skipgram_ns_loss_and_grads,
)

__all__ = [
    "attention_backward",
    "attention_forward",
    "cbow_ns_loss_and_grads",
    "dot_attention_backward",
    "dot_attention_forward",
    "encoder_block_backward",
    "encoder_block_forward",
    "gru_backward",
    "gru_forward",
    "gru_lm_loss_and_grads",
    "gru_lm_step",
    "init_lm_params",
    "layer_norm_backward",
    "layer_norm_forward",
    "lstm_backward",
    "lstm_forward",
    "lstm_lm_loss_and_grads",
    "lstm_lm_step",
    "peeky_loss_and_grads",
    "rnn_backward",
    "rnn_forward",
    "rnn_lm_loss_and_grads",
    "rnn_lm_step",
    "scatter_add_rows",
    "skipgram_ns_loss_and_grads",
    "transformer_lm_loss_and_grads",
    "transformer_lm_step",
]
