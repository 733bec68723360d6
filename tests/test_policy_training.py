"""Tests for ``chatguard.policy.training``: reading example files (every
problem as file:line), the digest that says a model is stale, and training:
deterministic, thresholds chosen on held-out folds, and a model that reads
phrasings it was not given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chatguard.policy.model import Signal
from chatguard.policy.normalise import normalise
from chatguard.policy.signal_model import dumps
from chatguard.policy.training import (
    Settings,
    _threshold,
    examples_digest,
    read_examples,
    train,
)
from chatguard.policy.yaml_reader import PolicyError
from tests.support.examples import IMAGES, MEETINGS, NONE, write

S = Signal


def test_examples_are_read_with_their_signals(tmp_path: Path) -> None:
    write(tmp_path)
    examples = read_examples(tmp_path)
    assert len(examples) == len(IMAGES) + len(MEETINGS) + len(NONE) + 1
    by_text = {e.text: e for e in examples}
    assert by_text["send me a pic"].signals == {S.IMAGE_REQUEST}
    assert by_text["lol same"].signals == frozenset()
    assert by_text["send a pic then meet me"].signals == {S.IMAGE_REQUEST, S.MEETING}
    assert by_text["send me a pic"].line == 4


def test_every_problem_is_reported_with_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        extra=(
            "  imagerequest:\n    - x\n"
            '  none:\n    - "Send me a PIC"\n'
            "  multi:\n    - just text\n"
            "  meeting:\n    - {text: hi, signals: [nonsense]}\n"
            '    - ""\n'
        ),
    )
    with pytest.raises(PolicyError) as info:
        read_examples(tmp_path)
    text = str(info.value)
    assert f"{path}:" in text
    assert "unknown signal 'imagerequest'" in text
    assert "image_request" in text
    assert "the same message as line 4" in text
    assert "must be {text: ..., signals: [...]}" in text
    assert "unknown signal 'nonsense'" in text
    assert "is empty" in text


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no example files"):
        read_examples(tmp_path)


def test_the_digest_changes_with_any_example_file(tmp_path: Path) -> None:
    write(tmp_path)
    before = examples_digest(tmp_path)
    assert examples_digest(tmp_path) == before
    (tmp_path / "fr.yaml").write_text("language: fr\nexamples: {}\n", encoding="utf-8")
    assert examples_digest(tmp_path) != before


def test_training_is_deterministic_and_generalises_a_little(tmp_path: Path) -> None:
    write(tmp_path)
    examples = read_examples(tmp_path)
    model = train(examples, "d1", Settings(precision=0.8, folds=3))
    assert dumps(train(examples, "d1", Settings(precision=0.8, folds=3))) == dumps(model)
    assert model.signals == (S.IMAGE_REQUEST, S.MEETING)  # in ``Signal`` order
    assert model.examples_sha256 == "d1"
    assert model.quality["examples"] == len(examples)
    assert set(model.quality["image_request"]) == {"examples", "precision", "recall"}

    def found(text: str) -> set[Signal]:
        return {s for s, _ in model.found(normalise(text).folded)}

    assert S.IMAGE_REQUEST in found("send me a photo of you")  # not an example
    assert S.MEETING in found("lets meet at the station")
    assert found("good game lol") == set()


def test_a_negative_weight_raises_thresholds_as_a_lower_base_rate_would(tmp_path: Path) -> None:
    write(tmp_path)
    examples = read_examples(tmp_path)
    plain = train(examples, "d", Settings(precision=0.8, folds=3))
    rare = train(examples, "d", Settings(precision=0.8, folds=3, negative_weight=20.0))
    assert all(r >= p for r, p in zip(rare.thresholds, plain.thresholds, strict=True))
    assert rare.thresholds != plain.thresholds
    for settings in (Settings(negative_weight=0.0), Settings(negative_weight=float("inf"))):
        with pytest.raises(ValueError, match="negative weight must be a positive number"):
            train(examples, "d", settings)
    with pytest.raises(ValueError, match="precision must be in"):
        train(examples, "d", Settings(precision=1.5))


def test_thresholds_count_each_negative_as_weighted() -> None:
    scores = [3.0, 2.0, 1.0, 0.5]
    y = np.array([1, 0, 1, 1])
    # Plain: at 0.5, 3 of 4 flagged are right (0.75).
    assert _threshold(scores, y, 0.75) == (0.5, 0.75, 1.0)
    # One negative counted three times: only the top score reaches 0.75.
    assert _threshold(scores, y, 0.75, negative_weight=3.0) == (3.0, 1.0, 1 / 3)


def test_a_signal_with_too_few_examples_cannot_be_trained(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "en.yaml").write_text(
        'examples:\n  meeting:\n    - "meet me"\n  none:\n    - "hello"\n    - "bye"\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="meeting: 1 examples, at least 5"):
        train(read_examples(tmp_path), "d")


@pytest.mark.slow
def test_the_shipped_model_is_what_its_examples_train_to() -> None:
    # The model file in policies/ must be what `chatguard policy train` makes
    # of the examples beside it with this code (about 20 s).
    root = Path(__file__).parent.parent / "policies"
    examples_dir = root / "signal_model" / "examples"
    model = train(read_examples(examples_dir), examples_digest(examples_dir))
    assert dumps(model) == (root / "signal_model" / "model.json").read_text(encoding="utf-8")
