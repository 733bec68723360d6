"""Training the signal model from example messages.

Example files (``policies/signal_model/examples/*.yaml``, format in
``policies/README.md``) list chat messages under the signal each carries,
``none`` for messages that carry none, and ``multi`` for messages that carry
several (``{text: ..., signals: [...]}``). ``train`` fits one logistic
regression per signal over ``signal_model.features`` of each message's
folded normalised text, and chooses each signal's threshold on held-out
folds: the lowest score at which the messages it would flag are at least
``precision`` right (never below probability ``MIN_PROBABILITY``). In the
examples about half the messages carry a signal; in real chat almost none
do, so ``negative_weight`` can count each held-out message without the
signal that many times when measuring that precision (thresholds then
rise as they would at a lower base rate).

Invariants:

1. Deterministic: the same examples and arguments give the same model, and
   ``signal_model.dumps`` the same bytes (fixed seeds, sorted features,
   rounded weights).
2. ``examples_digest`` covers every example file's path and bytes; a model
   records the digest it was trained on, so ``chatguard policy test`` can
   say when the examples changed and the model was not retrained.
3. Reading examples reports every problem as ``file:line: reason``
   (``PolicyError``) and trains on nothing.

Training needs scikit-learn (the ``train`` extra); scoring never does.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chatguard.policy.model import Signal
from chatguard.policy.normalise import normalise
from chatguard.policy.signal_model import LEARNABLE, SignalModel, features
from chatguard.policy.yaml_reader import PolicyError, PolicyIssue, Reader, kind, suggest

NONE = "none"
MULTI = "multi"
MIN_PROBABILITY = 0.5  # a threshold is never below this probability
MIN_WEIGHT = 0.1  # smaller weights are dropped from the model file
MAX_EXAMPLE_CHARS = 1000
MAX_EXAMPLES = 200_000


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    signals: frozenset[Signal]
    file: str
    line: int


def example_paths(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.is_file())


def examples_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in example_paths(directory):
        data = path.read_bytes()
        name = path.name.encode()
        digest.update(b"%d:%s%d:" % (len(name), name, len(data)))
        digest.update(data)
    return digest.hexdigest()


def read_examples(directory: Path) -> list[Example]:
    """Every example in ``directory``; raises ``PolicyError`` listing every problem."""
    issues: list[PolicyIssue] = []
    out: list[Example] = []
    paths = example_paths(directory)
    if not paths:
        issues.append(PolicyIssue(str(directory), 0, "no example files (*.yaml) found"))
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as e:
            issues.append(PolicyIssue(str(path), 0, f"cannot read as UTF-8 text: {e}"))
            continue
        out += _read_file(Reader(str(path), issues), text)
    if len(out) > MAX_EXAMPLES:
        issues.append(PolicyIssue(str(directory), 0, f"more than {MAX_EXAMPLES} examples"))
    if issues:
        raise PolicyError(issues)
    return out


_NAMES = [s.value for s in LEARNABLE] + [NONE, MULTI]


def _read_file(r: Reader, text: str) -> list[Example]:
    root = r.compose(text)
    if root is None:
        return []
    top = r.mapping(root, "an example file", ("language", "examples"), ("examples",))
    if top is None or "examples" not in top:
        return []
    if not isinstance(top["examples"], yaml.MappingNode):
        r.error(top["examples"], f"'examples' must be a mapping, not {kind(top['examples'])}")
        return []
    out: list[Example] = []
    seen: dict[str, int] = {}
    for key_node, items in top["examples"].value:
        key = str(key_node.value)
        if key not in _NAMES:
            r.error(key_node, f"unknown signal {key!r} ({suggest(key, _NAMES)})")
            continue
        for node in r.items(items, key):
            example = _example(r, key, node)
            if example is None:
                continue
            folded = normalise(example.text).folded
            if folded in seen:
                r.error(node, f"the same message as line {seen[folded]}")
                continue
            seen[folded] = example.line
            out.append(example)
    return out


def _example(r: Reader, key: str, node: yaml.Node) -> Example | None:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        fields = r.mapping(node, "an example", ("text", "signals"), ("text", "signals"))
        if fields is None or "text" not in fields or "signals" not in fields:
            return None
        text = r.text(fields["text"], "text")
        names = r.texts(fields["signals"], "signals")
        signals = set()
        for name in names:
            if name not in _NAMES[: len(LEARNABLE)]:
                r.error(fields["signals"], f"unknown signal {name!r}")
                return None
            signals.add(Signal(name))
    elif key == MULTI:
        r.error(node, "an example under 'multi' must be {text: ..., signals: [...]}")
        return None
    else:
        text = r.text(node, "an example")
        signals = set() if key == NONE else {Signal(key)}
    if text is None:
        return None
    if not text.strip() or len(text) > MAX_EXAMPLE_CHARS:
        r.error(node, f"an example must have 1 to {MAX_EXAMPLE_CHARS} characters")
        return None
    return Example(text, frozenset(signals), r.file, line)


@dataclass(frozen=True, slots=True)
class Settings:
    precision: float = 0.9  # wanted precision of each signal on held-out folds
    c: float = 2.0  # inverse regularisation strength
    folds: int = 5
    seed: int = 0
    # Each held-out message without the signal counts this many times in the
    # threshold's precision: 1 measures at the examples' own base rate.
    negative_weight: float = 1.0


def train(examples: Sequence[Example], digest: str, settings: Settings = Settings()) -> SignalModel:
    """Fit the model; raises ``ValueError`` when a signal has too few examples
    or the settings are out of range."""
    if not 0 < settings.precision <= 1:
        raise ValueError(f"precision must be in (0, 1], not {settings.precision}")
    if not 0 < settings.negative_weight < math.inf:
        raise ValueError(
            f"negative weight must be a positive number, not {settings.negative_weight}"
        )
    import numpy as np
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    # A feature counts as often as it occurs, as scoring adds it each time.
    rows = [sorted(Counter(features(normalise(e.text).folded)).items()) for e in examples]
    vocab = {f: i for i, f in enumerate(sorted({f for row in rows for f, _ in row}))}
    indptr, indices, counts = [0], [], []
    for row in rows:
        indices += [vocab[f] for f, _ in row]
        counts += [n for _, n in row]
        indptr.append(len(indices))
    x = csr_matrix(
        (
            np.array(counts, dtype=np.float64),
            np.array(indices, dtype=np.int64),
            np.array(indptr),
        ),
        shape=(len(rows), len(vocab)),
    )
    names = sorted(vocab, key=vocab.__getitem__)
    signals = [s for s in LEARNABLE if sum(s in e.signals for e in examples) > 0]
    biases: list[float] = []
    thresholds: list[float] = []
    weights: dict[str, list[tuple[int, float]]] = {}
    quality: dict[str, Any] = {"examples": len(examples), "features": len(vocab)}
    for k, signal in enumerate(signals):
        y = np.array([signal in e.signals for e in examples], dtype=np.int8)
        positives = int(y.sum())
        if positives < settings.folds:
            raise ValueError(f"{signal.value}: {positives} examples, at least {settings.folds}")
        model = LogisticRegression(
            C=settings.c,
            solver="liblinear",
            class_weight="balanced",
            random_state=settings.seed,
            max_iter=1000,
        )
        folds = StratifiedKFold(settings.folds, shuffle=True, random_state=settings.seed)
        held_out = cross_val_predict(model, x, y, cv=folds, method="decision_function")
        threshold, precision, recall = _threshold(
            held_out, y, settings.precision, settings.negative_weight
        )
        model.fit(x, y)
        biases.append(round(float(model.intercept_[0]), 4))
        thresholds.append(round(threshold, 4))
        for j, w in enumerate(model.coef_[0]):
            if abs(w) >= MIN_WEIGHT:
                weights.setdefault(names[j], []).append((k, round(float(w), 4)))
        quality[signal.value] = {
            "examples": positives,
            "precision": round(precision, 3),
            "recall": round(recall, 3),
        }
    return SignalModel(
        signals=tuple(signals),
        bias=tuple(biases),
        thresholds=tuple(thresholds),
        weights={f: tuple(ws) for f, ws in sorted(weights.items())},
        examples_sha256=digest,
        quality=quality,
    )


def _threshold(
    scores: Any, y: Any, precision: float, negative_weight: float = 1.0
) -> tuple[float, float, float]:
    """The lowest score at which held-out precision is at least ``precision``
    (and the precision and recall there), each negative counted
    ``negative_weight`` times."""
    floor = math.log(MIN_PROBABILITY / (1 - MIN_PROBABILITY))
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    positives = int(y.sum())
    # No score reaches the precision: a threshold above every score (the
    # signal never fires) and honest figures for it.
    best = (max(floor, float(scores[order[0]]) + 1.0), 0.0, 0.0)
    tp = 0
    for n, i in enumerate(order, 1):
        tp += int(y[i])
        s = float(scores[i])
        if s < floor:
            break
        if n < len(order) and float(scores[order[n]]) == s:
            continue  # ties: decide once all scores equal to s are in
        flagged = tp + negative_weight * (n - tp)
        if tp / flagged >= precision:
            best = (s, tp / flagged, tp / positives)
    return best
