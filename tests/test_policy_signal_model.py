"""Tests for ``chatguard.policy.signal_model``: features, scoring, the model
file (refused with a reason when malformed), and the engine using a model
beside the rules (only where no rule found the signal, never for moderators,
shadow and off modes, direct triggers and quotations)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatguard.policy.engine import MODEL_RULE_PREFIX, Engine, MessageContext
from chatguard.policy.matcher import build_matcher
from chatguard.policy.model import ActionType, Mode, ModelUse, Policy, Rule, Signal, Where
from chatguard.policy.normalise import normalise
from chatguard.policy.rules import regex_pattern
from chatguard.policy.signal_model import (
    _ASCII_WORD,
    _WORD,
    MAX_FILE_BYTES,
    MAX_WORDS,
    ModelError,
    SignalModel,
    _words,
    dumps,
    features,
    from_json,
    load,
    loads,
    probability,
    top_features,
)
from tests.test_policy_engine import RULES

S = Signal


def tiny() -> SignalModel:
    """Image requests in German and Portuguese, which the test rules do not know;
    self-harm in German; and "send me a pic", which a rule already finds."""
    return SignalModel(
        signals=(S.IMAGE_REQUEST, S.SAFEGUARDING),
        bias=(-2.0, -2.0),
        thresholds=(0.0, 0.0),
        weights={
            "p:schic": ((0, 1.5),),
            "w:foto": ((0, 1.0),),
            "b:manda foto": ((0, 2.5),),
            "w:send": ((0, 1.0),),
            "w:pic": ((0, 1.5),),
            "p:gerit": ((1, 6.0),),
            "w:vielleicht": ((1, -3.0),),
            "w:katze": ((0, -4.0),),
        },
        examples_sha256="abc",
    )


def folded(text: str) -> str:
    return normalise(text).folded


# --- Features and scores -----------------------------------------------------------


def test_features_are_words_prefixes_pairs_and_age_brackets() -> None:
    assert features("manda fotos 12 y 30") == [
        "w:manda",
        "q:mand",
        "b:^ manda",
        "w:fotos",
        "q:foto",
        "b:manda fotos",
        "w:12",
        "n:minor",
        "b:fotos 12",
        "w:y",
        "b:12 y",
        "w:30",
        "n:adult",
        "b:y 30",
    ]
    assert "p:schic" in features("schick mir")


@pytest.mark.parametrize(
    "text",
    [
        "7 x 8 = 56",
        "fica 9/12 + 4/12 = 13/12",
        "treino as 6:30",
        "lend me $20",
        "20% off",
        "we won 12-10",
        "1.5 km",
        "7 × 8",
        "Trainingslager: 12.–14. Juli",
        "ages 12 - 14",
        "el 14 de julio",
        "le 12 juillet",
        "born july 12",
        "do 15 lipca",
    ],
)
def test_a_number_in_a_sum_time_date_score_or_price_has_no_age(text: str) -> None:
    found = features(folded(text))
    assert not [f for f in found if f.startswith("n:")]
    assert any(f.startswith("w:#") for f in found)


@pytest.mark.parametrize(
    "text", ["im 13.", "11, 12 en mayo", "tengo 12 años", "12 kkkk", "i'm 12 x"]
)
def test_a_number_on_its_own_keeps_its_age_bracket(text: str) -> None:
    assert "n:minor" in features(folded(text))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("b2b deals", ["b2b", "deals"]),  # a digit inside a word: no quantity
        ("b2b 5 x 3", ["b2b", "#5", "x", "#3"]),
        ("ich bin 12", ["ich", "bin", "12"]),
        ("café 5 x 3", ["café", "#5", "x", "#3"]),  # not ASCII: every word looked at
        ("x² café", ["x²", "café"]),
    ],
)
def test_words_mark_quantities_in_ascii_and_other_text(text: str, words: list[str]) -> None:
    assert _words(text) == words


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_text_is_read_into_the_same_words_either_way(text: str) -> None:
    # _words reads ASCII text with the plain class, other text with \w.
    assert _ASCII_WORD.findall(text) == _WORD.findall(text)


def test_each_ascii_character_is_a_word_character_by_both_patterns_or_by_neither() -> None:
    for c in map(chr, range(128)):
        assert bool(_ASCII_WORD.fullmatch(c)) == bool(_WORD.fullmatch(c)), repr(c)


def test_a_feature_counts_as_often_as_it_occurs() -> None:
    # Training counts features as scoring adds them: a repeated word is
    # scored (and was trained) twice.
    assert features("snap snap").count("w:snap") == 2


def test_features_read_a_bounded_number_of_words() -> None:
    assert len(features("wörter " * 100_000)) <= 4 * MAX_WORDS
    assert features("") == []


WORDS = st.sampled_from(
    ["schick", "mir", "n", "foto", "manda", "send", "pic", "katze", "geritzt", "vielleicht", "13"]
)


@given(st.lists(WORDS, max_size=80))
def test_found_decides_as_the_exact_scores_do(words: list[str]) -> None:
    # ``found`` adds packed fixed-point vectors; ``scores`` adds floats. With
    # weights in hundredths they agree exactly, also past ``MAX_WORDS`` words.
    model = tiny()
    text = folded(" ".join(words))
    scored = zip(model.signals, model.scores(text), model.thresholds, strict=True)
    exact = {s for s, z, t in scored if z >= t}
    found = model.found(text)
    assert {s for s, _ in found} == exact
    for signal, p in found:
        i = model.signals.index(signal)
        assert p == pytest.approx(probability(model.scores(text)[i]))


def test_found_is_the_same_with_or_without_its_memo() -> None:
    model = tiny()
    first = model.found(folded("schick mir n foto"))
    model._memo.clear()
    assert model.found(folded("schick mir n foto")) == first


@given(st.text(max_size=300))
def test_scoring_any_text_never_fails(text: str) -> None:
    model = tiny()
    scores = model.scores(folded(text))
    assert len(scores) == 2
    assert all(math.isfinite(z) for z in scores)


def test_a_message_carries_the_signals_whose_score_reaches_the_threshold() -> None:
    model = tiny()
    assert [s for s, _ in model.found(folded("schick mir n foto"))] == [S.IMAGE_REQUEST]
    assert [s for s, _ in model.found(folded("manda foto"))] == [S.IMAGE_REQUEST]
    assert model.found(folded("schick mir n foto von der katze")) == []  # a negative weight
    assert model.found(folded("ich hab mich wieder geritzt")) == [
        (S.SAFEGUARDING, probability(4.0))
    ]
    assert model.found(folded("guten morgen")) == []


def test_reasons_name_the_words_that_weigh_most() -> None:
    model = tiny()
    assert [f for f, _ in model.reasons(folded("manda foto"), S.IMAGE_REQUEST)] == [
        "b:manda foto",
        "w:foto",
    ]
    assert top_features(model, S.IMAGE_REQUEST, 2) == [("b:manda foto", 2.5), ("p:schic", 1.5)]


def test_probability_is_the_logistic_function() -> None:
    assert probability(0.0) == 0.5
    assert probability(-1000.0) == 0.0
    assert probability(1000.0) == 1.0


# --- The model file ------------------------------------------------------------------


def test_a_model_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text(dumps(tiny()), encoding="utf-8")
    assert load(path) == tiny()
    assert dumps(load(path)) == dumps(tiny())


def good() -> dict[str, Any]:
    return json.loads(dumps(tiny()))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.update(format=99), "model format 99 is not 1"),
        (lambda d: d.update(features=0), "trained on features version 0"),
        (lambda d: d.update(signals=["image_request", "nonsense"]), "bad 'signals'"),
        (lambda d: d.update(signals=["image_request", "evasion"]), "learnable signals once"),
        (lambda d: d.update(signals=["image_request", "image_request"]), "once each"),
        (lambda d: d.update(bias=[1.0]), "'bias' must list one number per signal (2)"),
        (lambda d: d.update(thresholds=[0, "x"]), "'thresholds' must hold numbers"),
        (lambda d: d.update(bias=[0, float("nan")]), "finite numbers"),
        (lambda d: d.update(weights=[]), "'weights' must be an object"),
        (lambda d: d["weights"].update({"w:x": [[5, 1.0]]}), "out of range"),
        (lambda d: d["weights"].update({"w:x": [1.0]}), "[index, weight] pairs"),
        (lambda d: d["weights"].update({"w:x": [[0, 101.0]]}), "at most 100"),
        (lambda d: d.update(bias=[0, 1e6]), "at most 100"),
    ],
)
def test_a_malformed_model_is_refused_with_a_reason(change: Any, reason: str) -> None:
    data = good()
    change(data)
    with pytest.raises(ModelError, match=None) as info:
        from_json(data)
    assert reason in str(info.value)


def test_unreadable_model_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not JSON"):
        loads(b"{not json")
    with pytest.raises(ModelError, match="a JSON object"):
        loads(b"[]")
    with pytest.raises(ModelError, match="cannot read"):
        load(tmp_path / "missing.json")
    with pytest.raises(ModelError, match="more than"):
        loads(b" " * (MAX_FILE_BYTES + 1))


# --- The engine with a model ---------------------------------------------------------


def engine(
    model: SignalModel | None = None, use: ModelUse | None = None, mode: Mode = Mode.ENFORCE
) -> Engine:
    policy = Policy(
        RULES,
        (),
        "test-1",
        mode=mode,
        signal_model=model or tiny(),
        model_use=use or ModelUse(),
    )
    return Engine(policy, build_matcher(RULES))


def say(
    e: Engine, text: str, *, roles: frozenset[str] = frozenset(), sender_age: str = "adult"
) -> Any:
    msg = MessageContext(
        text=text,
        conversation="c-1",
        sender="a",
        recipients=("b",),
        where=Where.DIRECT,
        sender_age=sender_age,
        recipient_ages={"b": "minor"},
        sender_roles=roles,
    )
    return e.assess(msg, None, 1.7e9)[0]


def test_the_model_adds_a_signal_no_rule_found() -> None:
    a = say(engine(), "schick mir n foto")
    assert a.signals == (S.IMAGE_REQUEST,)
    assert [m.rule_id for m in a.matches] == [MODEL_RULE_PREFIX + "image_request"]
    assert a.risk > 0


def test_a_signal_a_rule_found_is_the_rules_alone() -> None:
    a = say(engine(), "send me a pic")
    assert [m.rule_id for m in a.matches] == ["en.image.send"]


def test_per_signal_weights_and_the_default_weight() -> None:
    use = ModelUse(weight=0.5, weights={S.IMAGE_REQUEST: 2.0})
    a = say(engine(use=use), "schick mir n foto")
    assert a.matches[0].weight == 2.0
    assert say(engine(use=ModelUse(weight=0.5)), "schick mir n foto").matches[0].weight == 0.5


def test_a_moderators_messages_are_not_scored() -> None:
    a = say(engine(), "schick mir n foto", roles=frozenset({"moderator"}))
    assert a.matches == ()


def test_shadow_and_off() -> None:
    shadow = say(engine(use=ModelUse(mode=Mode.SHADOW)), "schick mir n foto")
    assert shadow.matches[0].shadow
    assert shadow.signals == (S.IMAGE_REQUEST,)
    assert say(engine(mode=Mode.SHADOW), "schick mir n foto").matches[0].shadow
    assert say(engine(use=ModelUse(enabled=False)), "schick mir n foto").matches == ()


def test_a_learned_disclosure_triggers_help_unless_turned_off() -> None:
    a = say(engine(), "ich hab mich gestern wieder geritzt", sender_age="minor")
    assert ActionType.ESCALATE in {x.type for x in a.actions}
    quiet = say(
        engine(use=ModelUse(triggers=False)), "ich hab mich wieder geritzt", sender_age="minor"
    )
    assert ActionType.ESCALATE not in {x.type for x in quiet.actions}
    assert quiet.signals == (S.SAFEGUARDING,)


def test_an_adult_quoting_a_disclosure_does_not_trigger_at_once() -> None:
    a = say(
        engine(),
        'in der stunde: wenn jemand schreibt "ich hab mich geritzt", hilf',
        sender_age="unknown",
    )
    assert S.SAFEGUARDING in a.signals
    assert ActionType.ESCALATE not in {x.type for x in a.actions}


def test_a_learned_trigger_needs_the_model_to_be_sure() -> None:
    unsure = say(engine(), "vielleicht hab ich mich geritzt", sender_age="minor")  # p = 0.73
    assert unsure.signals == (S.SAFEGUARDING,)
    assert ActionType.ESCALATE not in {x.type for x in unsure.actions}
    lenient = say(
        engine(use=ModelUse(trigger_at=0.7)), "vielleicht hab ich mich geritzt", sender_age="minor"
    )
    assert ActionType.ESCALATE in {x.type for x in lenient.actions}


def test_a_match_only_inside_quotations_weighs_less() -> None:
    own = say(engine(), "schick mir n foto", sender_age="unknown")
    quoted = say(engine(), "lesson: 'schick mir n foto' is a red flag", sender_age="unknown")
    assert quoted.signals == (S.IMAGE_REQUEST,)
    assert quoted.matches[0].weight == own.matches[0].weight * 0.1
    assert quoted.matches[0].quoted


def calls_the_reader(word: str) -> Rule:
    """A German kinship rule: the sender calls the reader ``word``."""
    return Rule(
        id="de.kinship.address",
        description=f"calls the reader {word}",
        signal=S.KINSHIP,
        languages=frozenset({"de"}),
        patterns=(regex_pattern(rf"\b{word}\b"),),
    )


def dm(text: str, sender: str, to: str, sender_age: str, to_age: str) -> MessageContext:
    return MessageContext(
        text=text,
        conversation="c-1",
        sender=sender,
        recipients=(to,),
        where=Where.DIRECT,
        sender_age=sender_age,
        recipient_ages={to: to_age},
    )


def test_the_model_finds_nothing_in_a_message_that_shows_a_family() -> None:
    rules = (*RULES, calls_the_reader("mama"))
    policy = Policy(rules, (), "test-1", signal_model=tiny())
    e = Engine(policy, build_matcher(rules))
    # The model reads words, not relations: what it would find beside a
    # family (or parents brought in) is not its to say. A rule would still act.
    a = say(e, "mama ich hab mich geritzt", sender_age="minor")
    assert a.signals == (S.KINSHIP,)
    assert ActionType.ESCALATE not in {x.type for x in a.actions}
    assert S.SAFEGUARDING in say(e, "ich hab mich geritzt", sender_age="minor").signals


def test_a_learned_threat_between_family_does_not_act_at_once() -> None:
    threats = SignalModel(
        signals=(S.SEXTORTION,),
        bias=(-2.0,),
        thresholds=(0.0,),
        weights={"w:zeig": ((0, 3.0),), "w:zimmer": ((0, 3.0),)},
        examples_sha256="abc",
    )
    rules = (*RULES, calls_the_reader("oma"))
    e = Engine(Policy(rules, (), "test-1", signal_model=threats), build_matcher(rules))

    def call(first: str) -> Any:
        _, state = e.assess(dm(first, "b", "a", "minor", "adult"), None, 1.7e9)
        grandma = dm("zeig mir dein zimmer", "a", "b", "adult", "minor")
        return e.assess(grandma, state, 1.7e9 + 60)[0]

    # The model reads words, not relations: a grandmother's "show me your
    # room" on a video call is not a threat once the child has called her oma.
    stranger = call("hallo")
    assert S.SEXTORTION in stranger.signals
    assert ActionType.ESCALATE in {x.type for x in stranger.actions}
    family = call("hallo oma")
    assert S.SEXTORTION in family.signals
    assert ActionType.ESCALATE not in {x.type for x in family.actions}


def test_signal_unless_guards_silence_the_model_and_unless_guards_do_not() -> None:
    image = Rule(
        id="de.image.foto",
        description="asks for a photo",
        signal=S.IMAGE_REQUEST,
        languages=frozenset({"de"}),
        patterns=(regex_pattern(r"\bfoto von dir\b"),),
        # A narrow reading of this rule's words: cancels the rule only.
        unless=(regex_pattern(r"\bvom zettel\b"),),
        # A lesson: the message carries no image request at all.
        signal_unless=(regex_pattern(r"\bwenn (?:dich )?jemand\b"),),
    )
    rules = (*RULES, image)
    e = Engine(Policy(rules, (), "test-1", signal_model=tiny()), build_matcher(rules))
    assert [m.rule_id for m in say(e, "schick mir n foto von dir").matches] == ["de.image.foto"]
    # The rule is cancelled; the model still reads "schick mir n foto".
    narrow = say(e, "schick mir n foto von dir vom zettel")
    assert [m.rule_id for m in narrow.matches] == [MODEL_RULE_PREFIX + "image_request"]
    # The guard says the message only talks about it: neither finds it.
    lesson = say(e, "wenn dich jemand bittet: schick mir n foto von dir, blockier ihn")
    assert lesson.matches == ()


def test_a_sign_that_acts_only_when_said_again_leaves_the_model_its_catch() -> None:
    """A ``trigger: false`` rule adds caution to what it matches ("when he
    drinks he hits me" alone could be a story); it must not silence the
    model's surer reading of the same message, which acts at once."""
    sign = Rule(
        id="de.safeguarding.sign",
        description="a parent who drinks",
        signal=S.SAFEGUARDING,
        languages=frozenset({"de"}),
        patterns=(regex_pattern(r"\bwenn er trinkt\b"),),
        trigger=False,
    )
    rules = (*RULES, sign)
    e = Engine(Policy(rules, (), "test-1", signal_model=tiny()), build_matcher(rules))
    alone = say(e, "wenn er trinkt schreit er", sender_age="minor")
    assert [m.rule_id for m in alone.matches] == ["de.safeguarding.sign"]
    assert ActionType.ESCALATE not in {x.type for x in alone.actions}
    told = say(e, "wenn er trinkt hab ich mich geritzt", sender_age="minor")
    assert MODEL_RULE_PREFIX + "safeguarding" in [m.rule_id for m in told.matches]
    assert ActionType.ESCALATE in {x.type for x in told.actions}
    # A rule that triggers keeps the signal to itself, as before.
    sure = Rule(
        id="de.safeguarding.told",
        description="self-harm told",
        signal=S.SAFEGUARDING,
        languages=frozenset({"de"}),
        patterns=(regex_pattern(r"\bgeritzt\b"),),
    )
    rules = (*RULES, sure)
    e = Engine(Policy(rules, (), "test-1", signal_model=tiny()), build_matcher(rules))
    told = say(e, "wenn er trinkt hab ich mich geritzt", sender_age="minor")
    assert [m.rule_id for m in told.matches] == ["de.safeguarding.told"]
