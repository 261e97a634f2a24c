"""Synthetic sequence tasks for recurrent models: adding, copy memory, and rule-based sentiment.

All three are generated from ``data.seed`` with a numpy Generator; ``data.length`` is the
sequence length T and ``data.num_samples`` the number of examples (defaults below), split
train/test by ``data.train_fraction``.

- ``adding`` (Hochreiter & Schmidhuber 1997; Le et al. 2015): each of T steps carries
  ``[value ~ U(0, 1), marker]``; exactly two markers, one in each half; the target is the sum
  of the two marked values. Predicting the constant 1 has MSE Var(U1 + U2) = 1/6.
- ``copy`` (Arjovsky et al. 2016): 10 symbols from 1..8, T-1 blanks (0), the delimiter 9,
  10 blanks: T + 20 steps. The target is blank everywhere except the last 10 steps, which
  repeat the 10 symbols. A memoryless model scores 10 log(8) / (T + 20) cross-entropy per step.
- ``sentiment``: token sequences whose label follows a word-order-dependent rule (below), so a
  bag-of-words model cannot be perfect while a sequence model can.

Sentiment rule. The vocabulary has padding (0), a sentence boundary ".", negations ("not",
"never", "no"), positive words (+1), negative words (-1) and neutral words. Reading left to
right, each negation *toggles* a flag that flips the polarity of every sentiment word after it,
up to the next "." (the flag resets at a sentence boundary; two negations cancel). The label is
1 if the sum of (flipped) polarities is positive, 0 if negative; sequences summing to 0 are
never generated. Classes are balanced exactly (stratified split). Sequences have a random
length between ceil(T/2) and T and are padded on the LEFT with 0, so an RNN's last step is
always a real token.
"""

from __future__ import annotations

import math

import numpy as np

from harness.data.base import Dataset
from harness.data.digits import stratified_split

DEFAULT_NUM_SAMPLES = {"adding": 5000, "copy": 2000, "sentiment": 4000}
MIN_LENGTH = {"adding": 2, "copy": 1, "sentiment": 4}

ANALYTIC_ADDING_BASELINE_MSE = 1.0 / 6.0  # Var(U1 + U2) with U ~ U(0, 1): predicting 1

COPY_SYMBOLS = 10  # how many symbols to remember
COPY_ALPHABET = 8  # symbols 1..8
COPY_BLANK, COPY_DELIMITER = 0, 9

# Sentiment vocabulary, in token-id order after <pad> (0).
PAD = "<pad>"
BOUNDARY = "."
NEGATIONS = ("not", "never", "no")
POSITIVE = ("good", "great", "excellent", "wonderful", "fine", "fun", "enjoyable", "brilliant")
NEGATIVE = ("bad", "awful", "terrible", "boring", "poor", "dull", "weak", "horrible")
NEUTRAL = ("the", "a", "movie", "film", "plot", "acting", "was", "is", "it", "this", "and",
           "story", "very", "really")
BASE_VOCAB = (PAD, BOUNDARY) + NEGATIONS + POSITIVE + NEGATIVE + NEUTRAL

# Per-token probabilities of each word kind in the sentiment generator. Negations are common
# enough that word counts alone are ambiguous; "." ends a sentence about every 6 words.
_P_BOUNDARY, _P_NEGATION, _P_SENTIMENT = 0.15, 0.15, 0.35


def _num_samples(cfg, name: str) -> int:
    """``data.num_samples`` if set, else this task's default."""
    return int(cfg.num_samples) if cfg.num_samples is not None else DEFAULT_NUM_SAMPLES[name]


def _split_count(n: int, train_fraction: float) -> int:
    """Training rows: floor(n * train_fraction), as for the Playground sets."""
    return int(math.floor(n * float(train_fraction)))


def load_adding(cfg) -> Dataset:
    """The adding problem: x float32 [n, T, 2], y float32 [n] in [0, 2]; regression."""
    n, t = _num_samples(cfg, "adding"), int(cfg.length)
    rng = np.random.default_rng(cfg.seed)
    values = rng.random((n, t))
    half = t // 2
    first = rng.integers(0, half, size=n)  # one marker in each half
    second = rng.integers(half, t, size=n)
    markers = np.zeros((n, t))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)
    k = _split_count(n, cfg.train_fraction)
    y_test = y[k:]
    return Dataset(
        name="adding",
        task="regression",
        layout="sequence",
        x_train=x[:k],
        y_train=y[:k],
        x_val=x[:0],
        y_val=y[:0],
        x_test=x[k:],
        y_test=y_test,
        info={
            "source": "adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015)",
            "length": t,
            # The score to beat: always predict 1.0 (the mean of the target).
            "baseline_mse": float(np.mean((y_test.astype(np.float64) - 1.0) ** 2)),
            "analytic_baseline_mse": ANALYTIC_ADDING_BASELINE_MSE,
        },
    )


def load_copy(cfg) -> Dataset:
    """Copy memory: x one-hot float32 [n, T+20, 10], y int32 [n, T+20]; per-step targets."""
    n, t = _num_samples(cfg, "copy"), int(cfg.length)
    total = t + 2 * COPY_SYMBOLS
    rng = np.random.default_rng(cfg.seed)
    symbols = rng.integers(1, COPY_ALPHABET + 1, size=(n, COPY_SYMBOLS))
    inputs = np.full((n, total), COPY_BLANK, dtype=np.int32)
    inputs[:, :COPY_SYMBOLS] = symbols
    inputs[:, COPY_SYMBOLS + t - 1] = COPY_DELIMITER  # after T-1 blanks
    targets = np.full((n, total), COPY_BLANK, dtype=np.int32)
    targets[:, -COPY_SYMBOLS:] = symbols
    x = np.eye(COPY_DELIMITER + 1, dtype=np.float32)[inputs]
    k = _split_count(n, cfg.train_fraction)
    return Dataset(
        name="copy",
        task="classification",
        layout="sequence",
        x_train=x[:k],
        y_train=targets[:k],
        x_val=x[:0],
        y_val=targets[:0],
        x_test=x[k:],
        y_test=targets[k:],
        num_classes=COPY_DELIMITER + 1,
        targets="sequence",
        info={
            "source": "copy memory task (Arjovsky et al. 2016)",
            "length": t,
            "total_length": total,
            # Blank for T+10 steps, then a uniform guess over 8 symbols for the last 10.
            "baseline_cross_entropy": COPY_SYMBOLS * math.log(COPY_ALPHABET) / total,
        },
    )


def sentiment_vocab(vocab_size: int = 0) -> list[str]:
    """The sentiment vocabulary; ``vocab_size`` > base size appends neutral filler words."""
    words = list(BASE_VOCAB)
    words += [f"filler{i}" for i in range(max(0, int(vocab_size) - len(words)))]
    return words


def sentiment_label_scores(tokens: np.ndarray, vocab: list[str]) -> np.ndarray:
    """The rule's score of each row of ``tokens`` [n, T]: sum of polarities after negation.

    Polarity is +1 / -1 for positive / negative words, multiplied by -1 for each negation
    earlier in the same sentence ("." resets). Padding and neutral words score 0.
    """
    ids = {w: i for i, w in enumerate(vocab)}
    polarity = np.zeros(len(vocab))
    polarity[[ids[w] for w in POSITIVE]] = 1.0
    polarity[[ids[w] for w in NEGATIVE]] = -1.0
    is_negation = np.zeros(len(vocab), dtype=bool)
    is_negation[[ids[w] for w in NEGATIONS]] = True
    boundary = ids[BOUNDARY]

    sign = np.ones(len(tokens))
    score = np.zeros(len(tokens))
    for step in range(tokens.shape[1]):
        tok = tokens[:, step]
        score += sign * polarity[tok]
        sign = np.where(is_negation[tok], -sign, sign)
        sign = np.where(tok == boundary, 1.0, sign)
    return score


def _sentiment_candidates(rng: np.random.Generator, m: int, t: int, vocab: list[str]) -> np.ndarray:
    """``m`` random left-padded token rows [m, t] (labels not yet decided)."""
    ids = {w: i for i, w in enumerate(vocab)}
    neutral_ids = np.array([ids[w] for w in NEUTRAL] + list(range(len(BASE_VOCAB), len(vocab))))
    kinds = [
        (_P_BOUNDARY, np.array([ids[BOUNDARY]])),
        (_P_NEGATION, np.array([ids[w] for w in NEGATIONS])),
        (_P_SENTIMENT / 2, np.array([ids[w] for w in POSITIVE])),
        (_P_SENTIMENT / 2, np.array([ids[w] for w in NEGATIVE])),
        (1.0 - _P_BOUNDARY - _P_NEGATION - _P_SENTIMENT, neutral_ids),
    ]
    kind = rng.choice(len(kinds), size=(m, t), p=[p for p, _ in kinds])
    tokens = np.zeros((m, t), dtype=np.int32)
    for k, (_, choices) in enumerate(kinds):
        mask = kind == k
        tokens[mask] = rng.choice(choices, size=int(mask.sum()))
    # Random content length in [ceil(t/2), t]; the rest (on the left) is padding.
    lengths = rng.integers(math.ceil(t / 2), t + 1, size=m)
    tokens[np.arange(t)[None, :] < (t - lengths)[:, None]] = 0
    return tokens


def generate_sentiment(n: int, t: int, rng: np.random.Generator, vocab: list[str]):
    """``n`` rows [n, t] and labels, half of each class (no ties), in random order."""
    want = {0: n - n // 2, 1: n // 2}
    rows: dict[int, list[np.ndarray]] = {0: [], 1: []}
    have = {0: 0, 1: 0}
    while have[0] < want[0] or have[1] < want[1]:
        cand = _sentiment_candidates(rng, max(256, n), t, vocab)
        score = sentiment_label_scores(cand, vocab)
        for label, keep in ((1, score > 0), (0, score < 0)):
            take = cand[keep][: want[label] - have[label]]
            rows[label].append(take)
            have[label] += len(take)
    x = np.concatenate(rows[0] + rows[1])
    y = np.concatenate([np.zeros(want[0], np.int32), np.ones(want[1], np.int32)])
    order = rng.permutation(n)
    return x[order], y[order]


def load_sentiment(cfg) -> Dataset:
    """Rule-based sentiment: x int32 tokens [n, T], y int32 0/1, balanced; layout "tokens"."""
    n, t = _num_samples(cfg, "sentiment"), int(cfg.length)
    vocab = sentiment_vocab(cfg.vocab_size)
    rng = np.random.default_rng(cfg.seed)
    x, y = generate_sentiment(n, t, rng, vocab)
    train_idx, test_idx = stratified_split(y, float(cfg.train_fraction), rng)
    return Dataset(
        name="sentiment",
        task="classification",
        layout="tokens",
        x_train=x[train_idx],
        y_train=y[train_idx],
        x_val=x[:0],
        y_val=y[:0],
        x_test=x[test_idx],
        y_test=y[test_idx],
        num_classes=2,
        vocab_size=len(vocab),
        info={
            "source": "synthetic rule-based sentiment (harness)",
            "vocab": vocab,
            "pad_id": 0,
            "rule": "sum of word polarities; a negation flips the words after it up to the "
            "next '.', two negations cancel; label 1 if the sum > 0 (ties never generated); "
            "left padding with 0",
            "length": t,
        },
    )
