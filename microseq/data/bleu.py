"""BLEU (Papineni et al. 2002): how many of a candidate's n-grams a reference has.

    p_n  = sum over sentences of the candidate's n-grams found in the reference
           (each counted at most as often as the reference has it: "clipped")
           / sum over sentences of the candidate's n-grams
    BP   = 1 if the candidates are longer than the references in total,
           else exp(1 - r / c)   (r, c: total reference and candidate lengths)
    BLEU = BP * (p_1 p_2 ... p_N) ** (1 / N)      BLEU-4: N = 4

Corpus-level, one reference per candidate, no smoothing: a corpus without a
single matching 4-gram scores 0.
"""
import math
from collections import Counter


def ngrams(tokens, n):
    """Counter of the n-grams (tuples) of a list of tokens."""
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(candidates, references, max_n=4):
    """BLEU-max_n of candidate token lists against their references (token lists)."""
    if len(candidates) != len(references):
        raise ValueError(f"corpus_bleu: {len(candidates)} candidates but "
                         f"{len(references)} references")
    matched, total = [0] * max_n, [0] * max_n
    cand_length = ref_length = 0
    for cand, ref in zip(candidates, references, strict=True):
        cand_length += len(cand)
        ref_length += len(ref)
        for n in range(1, max_n + 1):
            cand_counts, ref_counts = ngrams(cand, n), ngrams(ref, n)
            matched[n - 1] += sum(min(c, ref_counts[g]) for g, c in cand_counts.items())
            total[n - 1] += sum(cand_counts.values())
    if cand_length == 0 or min(matched) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matched, total, strict=True)) / max_n
    brevity = 1.0 if cand_length > ref_length else math.exp(1 - ref_length / cand_length)
    return brevity * math.exp(log_precision)
