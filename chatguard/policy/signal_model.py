"""The signal model: which signals one message carries, learned from examples.

The rules say exactly which phrasings carry a signal; the signal model
generalises from example messages (``policies/signal_model/examples/``) to
phrasings nobody wrote a rule for. It is a linear model per signal over the
words of the message's folded normalised text (what the rules match too, so
leetspeak, look-alike letters and split letters are already undone):

- each word (``w:snap``), its first five and four letters when it is longer
  (``p:fotin``, ``q:foto``: inflections and diminutives in six languages share
  a stem), and each pair of neighbouring words by their first five letters
  (``b:manda foto``);
- for a number, its age bracket (``n:minor`` for 5 to 17, ``n:adult`` for 18
  to 99): "im 11" and "tengo 12" teach one thing. A number that is part of a
  sum, a time, a date, a fraction, a score or a price ("7 x 8 = 56",
  "9/12", "6:30", "$20", "3-1") is a quantity, not an age: it is read as
  ``#`` and its digits (``w:#12``), with no bracket.

A message carries a signal when its score (the sum of its features' weights
and the signal's bias) reaches the signal's threshold. Training
(``training.py``) chooses each threshold for precision on held-out folds;
scores are logits, so ``probability`` is the logistic function of one.

Invariants:

1. Pure and cheap: ``found`` is one pass over at most ``MAX_WORDS`` words,
   one dictionary lookup and one integer addition a word (the packed sum of
   the word's own features and its pair with the word before, remembered for
   up to ``MAX_MEMO_ENTRIES`` pairs), then one AND for a message that carries
   no signal; no numpy at run time, no I/O except ``load``, no global state.
   Decisions use weights rounded to millionths, so a score within a
   millionth of its threshold may fall either way.
2. A model file is JSON with a ``format`` number and the ``features``
   version it was trained on; a file of another format or features version,
   with unknown signals or malformed weights is refused with a reason
   (``ModelError``), never half-loaded.
3. ``features`` is the one definition of the features, shared by training
   and scoring, so a model always scores what it was trained on.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from chatguard.policy.model import Signal

FORMAT = 1
# The version of ``features``: a model trained on other features would add
# weights to the wrong things, so it is refused (retrain it). Raise this
# whenever ``features`` or ``word_features`` changes what they return.
FEATURES = 3
MAX_WORDS: Final = 64  # a long message is read by its first words; signals come early
STEM: Final = 5  # letters of a word's prefix feature...
SHORT_STEM: Final = 4  # ...and of its shorter one ("fotinho" and "fotos" share "q:foto")
MAX_FILE_BYTES = 32 * 1024 * 1024  # a larger model file is refused, not read
MAX_MEMO_ENTRIES: Final = 100_000  # (word before, word) pairs whose summed weights are kept
MAX_WEIGHT = 100.0  # a larger weight, bias or threshold is refused (lanes must not overflow)
SCALE: Final = 1_000_000  # weights are added in millionths
LANE: Final = 48  # bits per signal in the packed sum
_HALF: Final = 1 << (LANE - 1)
_MASK: Final = (1 << LANE) - 1
_TOPS: Final = [sum(_HALF << (LANE * i) for i in range(n)) for n in range(len(Signal) + 1)]


def _fixed(x: float) -> int:
    return round(x * SCALE)


# Signals the model may learn. ``evasion`` is the normaliser's. ``kinship``
# lowers risk, so a false one hides grooming; words alone cannot tell "your
# mum" from "mum", so only the rules' exact forms give it.
LEARNABLE: tuple[Signal, ...] = tuple(
    s for s in Signal if s not in (Signal.EVASION, Signal.KINSHIP, Signal.OPENNESS)
)

_WORD: Final = re.compile(r"[^\W_]+")
# The same words in ASCII text, where a word character is a letter or a
# digit: a plain class, cheaper than asking the Unicode database of each.
_ASCII_WORD: Final = re.compile(r"[0-9A-Za-z]+")
# In ASCII text a word starts with a digit only if the text has one: a
# cheaper test than looking at every word's first character.
_ASCII_DIGIT: Final = re.compile(r"[0-9]")


class ModelError(ValueError):
    """A model file that cannot be used, and why."""


# Beside a number, what makes it a quantity rather than an age: joined to
# another number by a decimal point, colon, slash or dash ("1.5", "6:30",
# "9/12", "3-1", "12.–14."), or next to an operator or a currency or percent
# sign, with or without a space ("7 x 8", "= 56", "$20", "20 %"); or a day of
# a month ("14. Juli", "12 de julio", "le 3 mars", "july 12"), in the six
# languages' month names as the normaliser folds them (English "may" and
# "march" are left out: "13 may be" is an age more often than a date).
_JOINED = ".,:/-–—"
_MONTHS = (
    "jan|january|feb|february|apr|april|jun|june|jul|july|aug|august|sep|sept|september|"
    "oct|october|nov|november|dec|december|"
    "enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|"
    "noviembre|diciembre|"
    "janvier|fevrier|mars|avril|mai|juin|juillet|aout|septembre|octobre|novembre|decembre|"
    "januar|jaenner|janner|februar|marz|maerz|juni|juli|oktober|dezember|"
    "janeiro|fevereiro|marco|maio|junho|julho|setembro|outubro|novembro|dezembro|"
    "stycznia|lutego|marca|kwietnia|maja|czerwca|lipca|sierpnia|wrzesnia|pazdziernika|"
    "listopada|grudnia"
)
_MONTH_AFTER = re.compile(rf"\.? ?(?:de |of )?(?:{_MONTHS})\b")
_MONTH_BEFORE = re.compile(rf"\b(?:{_MONTHS}) $")
_RANGE_AFTER = re.compile(r"\.? ?[-–—] ?[0-9]")  # "12.–14.", "12 - 14"
_RANGE_BEFORE = re.compile(r"[0-9]\.? ?[-–—] ?$")
_OPERATOR_BEFORE = "+×*=÷$€£#"
_OPERATOR_AFTER = "+×*=÷%€$£"


def _is_quantity(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    if before and before in _JOINED and start >= 2 and text[start - 2].isdigit():
        return True
    if after and after in _JOINED and end + 1 < len(text) and text[end + 1].isdigit():
        return True
    if (
        _MONTH_AFTER.match(text, end, end + 16)
        or _MONTH_BEFORE.search(text, max(0, start - 14), start)
        or _RANGE_AFTER.match(text, end, end + 4)
        or _RANGE_BEFORE.search(text, max(0, start - 5), start)
    ):
        return True
    left = text[max(0, start - 3) : start].rstrip()
    right = text[end : end + 4].lstrip()
    if left and (left[-1] in _OPERATOR_BEFORE or (left[-1] == "x" and left[-2:-1] in (" ", ""))):
        return True
    return bool(right) and (
        right[0] in _OPERATOR_AFTER
        or (right[0] == "x" and right[1:2] in (" ", "") and right[1:].lstrip()[:1].isdigit())
    )


def _words(folded: str) -> list[str]:
    ascii_ = folded.isascii()
    words = (_ASCII_WORD if ascii_ else _WORD).findall(folded, 0, 8 * 1024)[:MAX_WORDS]
    if (
        not _ASCII_DIGIT.search(folded, 0, 8 * 1024)
        if ascii_
        else not any(w[0].isdigit() for w in words)
    ):
        return words
    # Rare: a message with a number. Mark the ones that are quantities.
    out: list[str] = []
    for m in _WORD.finditer(folded, 0, 8 * 1024):
        if len(out) == MAX_WORDS:
            break
        w = m.group()
        if w.isdigit() and _is_quantity(folded, m.start(), m.end()):
            w = "#" + w
        out.append(w)
    return out


def word_features(w: str) -> list[str]:
    """The features of one word on its own (its pairs are ``features``')."""
    out = ["w:" + w]
    if len(w) > STEM:
        out.append("p:" + w[:STEM])
    if len(w) > SHORT_STEM:
        out.append("q:" + w[:SHORT_STEM])
    if w.isdigit() and len(w) <= 2:
        n = int(w)
        if 5 <= n <= 17:
            out.append("n:minor")
        elif n >= 18:
            out.append("n:adult")
    return out


def features(folded: str) -> list[str]:
    """The features of one message's folded normalised text."""
    out: list[str] = []
    prev = "^"
    for w in _words(folded):
        out += word_features(w)
        stem = w[:STEM]
        out.append("b:" + prev + " " + stem)
        prev = stem
    return out


@dataclass(frozen=True, slots=True)
class SignalModel:
    """A trained model: per signal a bias and a threshold (logits), and per
    feature the weights it adds to some signals."""

    signals: tuple[Signal, ...]
    bias: tuple[float, ...]
    thresholds: tuple[float, ...]
    weights: Mapping[str, tuple[tuple[int, float], ...]]
    examples_sha256: str = ""  # the examples it was trained on
    quality: Mapping[str, Any] = field(default_factory=dict)  # training's held-out figures

    # Scoring adds whole vectors as one integer: each signal's weight, in
    # millionths, in a lane of ``LANE`` bits, every lane offset by half its
    # range so that it never borrows from the next. The lanes of a message's
    # sum minus its thresholds have their top bit set exactly where a score
    # reaches its threshold, so most messages (no signal) cost one addition
    # per word and one AND. Weights, bias and thresholds are bounded
    # (``MAX_WEIGHT``), so no lane overflows within ``MAX_WORDS`` words.
    # Per (word before, word) the packed sum of the word's own features and
    # the pair is memoised: chat reuses words and pairs. A memo only: the
    # result is the same with or without it, and it is emptied at its bound.
    _memo: dict[tuple[str, str], int] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _reach: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if any(not abs(v) <= MAX_WEIGHT for v in (*self.bias, *self.thresholds)) or any(
            not abs(x) <= MAX_WEIGHT for ws in self.weights.values() for _, x in ws
        ):
            raise ModelError(f"weights, bias and thresholds must be at most {MAX_WEIGHT:g}")
        # Lane i starts at half + bias - threshold: after the words' weights
        # are added it is at least half (top bit set) iff the score of signal
        # i reaches its threshold.
        reach = sum(
            (_HALF + _fixed(b) - _fixed(t)) << (LANE * i)
            for i, (b, t) in enumerate(zip(self.bias, self.thresholds, strict=True))
        )
        object.__setattr__(self, "_reach", reach)

    def scores(self, folded: str) -> list[float]:
        """The logit of each of ``signals`` for a message (exact, unmemoised:
        for explanations and tests; ``found`` decides)."""
        z = list(self.bias)
        prev = "^"
        for w in _words(folded):
            for i, x in self._weights_after(prev, w):
                z[i] += x
            prev = w[:STEM]
        return z

    def _weights_after(self, prev: str, w: str) -> tuple[tuple[int, float], ...]:
        """The summed weights of ``w``'s own features and of its pair with
        the stem before it, in signal order."""
        summed: dict[int, float] = {}
        for f in (*word_features(w), "b:" + prev + " " + w[:STEM]):
            for i, x in self.weights.get(f, ()):
                summed[i] = summed.get(i, 0.0) + x
        return tuple(sorted(summed.items()))

    def _packed_after(self, prev: str, w: str) -> int:
        return sum(_fixed(x) << (LANE * i) for i, x in self._weights_after(prev, w))

    def found(self, folded: str) -> list[tuple[Signal, float]]:
        """The signals a message carries, each with its probability."""
        total = self._reach
        memo = self._memo
        prev = "^"
        for w in _words(folded):
            key = (prev, w)
            packed = memo.get(key)
            if packed is None:
                packed = self._packed_after(prev, w)
                if len(memo) >= MAX_MEMO_ENTRIES:
                    memo.clear()
                memo[key] = packed
            total += packed
            prev = w[:STEM]
        if not total & _TOPS[len(self.signals)]:
            return []
        out = []
        for i, signal in enumerate(self.signals):
            lane = (total >> (LANE * i)) & _MASK
            if lane >= _HALF:
                # The lane holds score - threshold + half: recover the score.
                z = (lane - _HALF) / SCALE + self.thresholds[i]
                out.append((signal, probability(z)))
        return out

    def reasons(self, folded: str, signal: Signal, top: int = 5) -> list[tuple[str, float]]:
        """The features that weigh most toward ``signal`` in a message, for
        ``chatguard policy explain``."""
        i = self.signals.index(signal)
        out = []
        for f in dict.fromkeys(features(folded)):
            w = dict(self.weights.get(f, ())).get(i)
            if w is not None and w > 0:
                out.append((f, w))
        return sorted(out, key=lambda fw: -fw[1])[:top]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "features": FEATURES,
            "signals": [s.value for s in self.signals],
            "bias": list(self.bias),
            "thresholds": list(self.thresholds),
            "examples_sha256": self.examples_sha256,
            "quality": dict(self.quality),
            "weights": {f: [[i, w] for i, w in ws] for f, ws in sorted(self.weights.items())},
        }


def probability(logit: float) -> float:
    if logit < -60:
        return 0.0
    return 1.0 / (1.0 + math.exp(-logit))


def from_json(data: Any) -> SignalModel:
    """A model from its JSON value; raises ``ModelError`` naming what is wrong."""
    if not isinstance(data, dict):
        raise ModelError("a model file must hold a JSON object")
    if data.get("format") != FORMAT:
        raise ModelError(f"model format {data.get('format')!r} is not {FORMAT}")
    if data.get("features") != FEATURES:
        raise ModelError(
            f"the model was trained on features version {data.get('features')!r}, "
            f"this ChatGuard reads version {FEATURES}: run chatguard policy train"
        )
    try:
        signals = tuple(Signal(s) for s in data["signals"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"bad 'signals': {e}") from None
    if any(s not in LEARNABLE for s in signals) or len(set(signals)) != len(signals):
        raise ModelError("'signals' must list learnable signals once each")
    n = len(signals)
    bias = _floats(data.get("bias"), n, "bias")
    thresholds = _floats(data.get("thresholds"), n, "thresholds")
    raw = data.get("weights")
    if not isinstance(raw, dict):
        raise ModelError("'weights' must be an object")
    weights: dict[str, tuple[tuple[int, float], ...]] = {}
    for f, ws in raw.items():
        try:
            pairs = tuple((int(i), float(w)) for i, w in ws)
        except (TypeError, ValueError):
            raise ModelError(f"weights of {f!r} must be [index, weight] pairs") from None
        if any(not 0 <= i < n or not abs(w) <= MAX_WEIGHT for i, w in pairs):
            raise ModelError(
                f"weights of {f!r} name a signal out of range or are not finite numbers "
                f"of at most {MAX_WEIGHT:g}"
            )
        weights[str(f)] = pairs
    quality = data.get("quality")
    return SignalModel(
        signals=signals,
        bias=bias,
        thresholds=thresholds,
        weights=weights,
        examples_sha256=str(data.get("examples_sha256", "")),
        quality=quality if isinstance(quality, dict) else {},
    )


def _floats(value: Any, n: int, name: str) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) != n:
        raise ModelError(f"'{name}' must list one number per signal ({n})")
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ModelError(f"'{name}' must hold numbers") from None
    if not all(abs(v) <= MAX_WEIGHT for v in out):
        raise ModelError(f"'{name}' must hold finite numbers of at most {MAX_WEIGHT:g}")
    return out


def load(path: Path) -> SignalModel:
    """Read a model file; raises ``ModelError`` (also for I/O and JSON errors)."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ModelError(f"{size} bytes is more than the {MAX_FILE_BYTES} a model may have")
        return loads(path.read_bytes())
    except OSError as e:
        raise ModelError(f"cannot read: {e.strerror or e}") from None


def loads(data: bytes) -> SignalModel:
    """A model from a model file's bytes; raises ``ModelError``."""
    if len(data) > MAX_FILE_BYTES:
        raise ModelError(f"{len(data)} bytes is more than the {MAX_FILE_BYTES} a model may have")
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise ModelError(f"not JSON: {e}") from None
    return from_json(value)


def dumps(model: SignalModel) -> str:
    """The model file's text: stable (sorted, rounded) so retraining on the
    same examples gives the same bytes."""
    return json.dumps(model.to_json(), ensure_ascii=False, sort_keys=True, indent=None) + "\n"


def top_features(model: SignalModel, signal: Signal, k: int = 20) -> Sequence[tuple[str, float]]:
    """The ``k`` features that weigh most toward ``signal`` (for review)."""
    i = model.signals.index(signal)
    pairs = [(f, w) for f, ws in model.weights.items() for j, w in ws if j == i]
    return sorted(pairs, key=lambda fw: -fw[1])[:k]
