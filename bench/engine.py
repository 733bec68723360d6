"""Benchmark for the policy engine, one stage at a time.

Times, per message on one thread, each stage of the engine over a seeded
mix of chat messages (mostly ordinary chat that matches nothing, some that
matches, some obfuscated), for each pack:

* ``default``: about 150 generated rules in six languages, shaped like the
  shipped pack (phrases, words, fuzzy words, regexes, ``unless``);
* ``10k``: that pack grown to 10,000 rules with random phrases (65%), words
  (15%), fuzzy words (10%) and regexes (10%) from a word list;
* ``policies``: the shipped pack (any pack folder can be named);

and for each matcher backend (``hyperscan`` and ``fallback``). Stages:

* ``normalise``: ``normalise(text)``, the baseline every later stage pays;
* ``scan``: ``Matcher.scan`` on an already normalised message;
* ``normalise+scan``: both, as the pipeline runs them;
* ``engine (normalise+scan+risk)``: ``Engine.assess`` with the pack's rules
  under default settings, no thresholds and no signal model, the same for
  every pack;
* ``engine, the pack's policy``: the same with the pack's own policy (its
  risk settings, thresholds and signal model), as the sidecar runs it; for
  a pack folder only.

A later stage (the risk model, the whole engine) is one more entry in
``stages()``. For context, the small packs also time ``naive``: every
distinct pattern run with the `regex` module, one after the other (on 1,000
messages).

Prints, for each pack, backend and stage, the median over five runs of the
mean time per message (µs/msg) and the messages per second that gives,
overall and for the ordinary messages alone; plus the time to build each
matcher, from scratch and from the Hyperscan cache.

Run from the repository root: ``.venv/bin/python -m bench.engine``
(``--quick``: one run, 2,000 messages; ``--packs default,10k``;
``--backends fallback``; ``--texts tests/eval/*.jsonl``: the messages of
transcripts instead of the generated mix, a seeded sample of ``--count``
of them, such as a service's own traffic). Side by side in one run: ``--baseline REV`` (the
engine at a git revision and now) and ``--compiled`` (the working tree pure
and as the compiled build, ``chatguard.native``).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import regex

from bench.corpus import sample
from bench.timing import Timing, per_item
from chatguard import native
from chatguard.policy.engine import Engine, MessageContext
from chatguard.policy.matcher import Matcher, build_matcher
from chatguard.policy.model import Policy, Rule, Where
from chatguard.policy.normalise import normalise
from chatguard.policy.risk import ConversationState
from chatguard.policy.rules import PolicyError, load_policy

RUNS = 5
MESSAGES = 10_000

# --- Packs ------------------------------------------------------------------------------

# Per language: (signal, patterns) where each pattern is a YAML flow mapping.
# Every entry becomes one rule; the first phrase doubles as its example.
DEFAULT_RULES: dict[str, list[tuple[str, list[str]]]] = {
    "en": [
        ("age_probe", ["phrase: how old are you", "phrase: how old r u", "words: [asl]"]),
        ("age_probe", ["phrase: what grade are you in", "phrase: what year are you in"]),
        ("age_probe", [r"regex: '\bhow old (are|r) (you|u)\b'", "phrase: ur age"]),
        ("minor_self_declared", [r"regex: '\bi(?:''| a)?m (1[0-7]|[89])\b'"]),
        ("minor_self_declared", [r"regex: '\b[5-8]th grade\b'", "phrase: in middle school"]),
        ("adult_self_declared", ["phrase: my wife and kids", r"regex: '\bi''?m ([2-6]\d)\b'"]),
        ("flattery", ["phrase: so mature for your age", "phrase: mature for ur age"]),
        ("flattery", ["phrase: you look older than", "phrase: you are so pretty"]),
        ("flattery", ["phrase: such a good body", "phrase: you could be a model"]),
        ("exclusivity", ["phrase: only one who understands", "phrase: you are special to me"]),
        ("exclusivity", ["phrase: nobody gets me like you", "phrase: we have something special"]),
        ("secrecy", ["phrase: our secret", "phrase: our little secret"]),
        ("secrecy", ["phrase: don't tell your parents", "phrase: dont tell your mom"]),
        ("secrecy", ["phrase: delete our chat", "phrase: delete these messages"]),
        ("secrecy", [r"regex: '\bdon''?t tell (anyone|anybody|ur|your)\b'"]),
        ("risk_assessment", ["phrase: are your parents home", "phrase: are you alone"]),
        ("risk_assessment", ["phrase: is anyone with you", "phrase: who else uses your phone"]),
        ("risk_assessment", ["phrase: do your parents check your phone"]),
        ("isolation", ["phrase: add me on snap", "words: [snapchat, whatsapp, telegram]"]),
        ("isolation", [r"regex: '\b(add|text|msg|hit) me (up )?on (snap|kik|insta|discord)\b'"]),
        ("isolation", ["phrase: lets talk somewhere private", "phrase: switch to another app"]),
        ("isolation", ["words: [snapchat, whatsapp, telegram, instagram]", "fuzzy: 1"]),
        ("pi_request", ["phrase: what school do you go to", "phrase: where do you live"]),
        ("pi_request", ["phrase: whats your address", "phrase: give me your number"]),
        ("pi_request", [r"regex: '\bwhat(''?s| is) (ur|your) (number|address|school)\b'"]),
        ("pi_share", [r"regex: '\b\d{3}[-. ]\d{3}[-. ]\d{4}\b'"]),
        ("image_request", ["phrase: send me a pic", "phrase: send pics", "phrase: 📸"]),
        ("image_request", ["phrase: turn on your cam", "phrase: show me your body"]),
        ("image_request", [r"regex: '\bsend (?:\w+ ){0,2}(pics?|photos?|nudes)\b'"]),
        ("sexual", ["words: [nudes, sexting]", "phrase: have you ever kissed"]),
        ("sexual", ["phrase: are you a virgin", "phrase: what are you wearing"]),
        ("gift_lure", ["phrase: free robux", "phrase: free vbucks", "words: [giftcard]"]),
        ("gift_lure", ["phrase: i can buy you", "phrase: i will send you money"]),
        ("meeting", ["phrase: meet up", "phrase: meet in person", "phrase: pick you up"]),
        ("meeting", ["phrase: come over to my place", "phrase: where can we meet"]),
        ("sextortion", ["phrase: or i will share", "phrase: or ill send it to"]),
        ("sextortion", ["phrase: everyone will see", "phrase: send more or"]),
        ("safeguarding", ["phrase: he touched me", "phrase: i want to die"]),
        ("safeguarding", ["phrase: i hurt myself", "phrase: nobody would care if"]),
    ],
    "es": [
        ("age_probe", ["phrase: cuántos años tienes", "phrase: que edad tienes"]),
        ("minor_self_declared", [r"regex: '\btengo (1[0-7]|[89]) anos\b'"]),
        ("secrecy", ["phrase: nuestro secreto", "phrase: no le digas a tus padres"]),
        ("risk_assessment", ["phrase: estás sola", "phrase: están tus padres"]),
        ("isolation", ["phrase: agrégame en snap", "phrase: pásame tu whatsapp"]),
        ("image_request", ["phrase: mándame una foto", "phrase: envíame fotos"]),
        ("meeting", ["phrase: nos vemos en persona", "phrase: te recojo"]),
        ("gift_lure", ["phrase: te regalo", "phrase: robux gratis"]),
        ("flattery", ["phrase: eres muy madura", "phrase: qué guapa eres"]),
        ("pi_request", ["phrase: a qué colegio vas", "phrase: dónde vives"]),
    ],
    "pl": [
        ("age_probe", ["phrase: ile masz lat", "phrase: w której jesteś klasie"]),
        ("secrecy", ["phrase: nie mów rodzicom", "phrase: nasz sekret"]),
        ("image_request", ["phrase: wyślij zdjęcie", "phrase: wyślij mi fotkę"]),
        ("image_request", ["words: [zdjęcia]", "words: [fotografię]", "fuzzy: 1"]),
        ("isolation", ["phrase: dodaj mnie na snapie", "phrase: napisz na whatsapp"]),
        ("risk_assessment", ["phrase: jesteś sama w domu", "phrase: czy rodzice są w domu"]),
        ("meeting", ["phrase: spotkajmy się", "phrase: przyjadę po ciebie"]),
        ("flattery", ["phrase: jesteś taka dojrzała", "phrase: jesteś śliczna"]),
        ("gift_lure", ["phrase: kupię ci", "phrase: dam ci pieniądze"]),
        ("pi_request", ["phrase: gdzie mieszkasz", "phrase: do jakiej szkoły chodzisz"]),
    ],
    "de": [
        ("age_probe", ["phrase: wie alt bist du", "phrase: in welcher klasse bist du"]),
        ("secrecy", ["phrase: sag es nicht deinen eltern", "phrase: unser geheimnis"]),
        ("image_request", ["phrase: schick mir ein foto", "phrase: schick bilder"]),
        ("isolation", ["phrase: schreib mir auf snap", "phrase: hast du whatsapp"]),
        ("risk_assessment", ["phrase: bist du allein", "phrase: sind deine eltern da"]),
        ("meeting", ["phrase: lass uns treffen", "phrase: ich hole dich ab"]),
        ("flattery", ["phrase: du bist so reif", "phrase: du bist so hübsch"]),
        ("gift_lure", ["phrase: ich kaufe dir", "phrase: gratis robux"]),
        ("pi_request", ["phrase: wo wohnst du", "phrase: auf welche schule gehst du"]),
        ("minor_self_declared", [r"regex: '\bich bin (1[0-7]|[89])\b'"]),
    ],
    "fr": [
        ("age_probe", ["phrase: tu as quel âge", "phrase: quel âge as tu"]),
        ("secrecy", ["phrase: notre secret", "phrase: ne dis rien à tes parents"]),
        ("image_request", ["phrase: envoie moi une photo", "phrase: envoie des photos"]),
        ("isolation", ["phrase: ajoute moi sur snap", "phrase: tu as whatsapp"]),
        ("risk_assessment", ["phrase: tu es seule", "phrase: tes parents sont là"]),
        ("meeting", ["phrase: on se voit", "phrase: je viens te chercher"]),
        ("flattery", ["phrase: tu es si mature", "phrase: tu es très jolie"]),
        ("gift_lure", ["phrase: je t'achète", "phrase: robux gratuits"]),
        ("pi_request", ["phrase: tu habites où", "phrase: tu vas à quelle école"]),
        ("minor_self_declared", [r"regex: '\bj''?ai (1[0-7]|[89]) ans\b'"]),
    ],
    "ru": [
        ("age_probe", ["phrase: сколько тебе лет", "phrase: в каком ты классе"]),
        ("secrecy", ["phrase: не говори родителям", "phrase: наш секрет"]),
        ("image_request", ["phrase: пришли фото", "phrase: скинь фотку"]),
        ("image_request", ["words: [фотографию]", "fuzzy: 1"]),
        ("isolation", ["phrase: добавь меня в телеграм", "phrase: есть ватсап"]),
        ("risk_assessment", ["phrase: ты одна дома", "phrase: родители дома"]),
        ("meeting", ["phrase: давай встретимся", "phrase: я тебя заберу"]),
        ("flattery", ["phrase: ты такая взрослая", "phrase: ты очень красивая"]),
        ("gift_lure", ["phrase: я тебе куплю", "phrase: дам денег"]),
        ("pi_request", ["phrase: где ты живешь", "phrase: в какой школе"]),
    ],
}


def _examples(patterns: Sequence[str]) -> str:
    for p in patterns:
        if p.startswith("phrase: "):
            return p.removeprefix("phrase: ")
    return "example"


def write_default_pack(directory: Path) -> None:
    """About 150 rules: each rule above, and for three languages a variant
    of each with an ``unless``, as a real pack grows."""
    for language, rules in DEFAULT_RULES.items():
        lines = [f"language: {language}", "rules:"]
        for i, (signal, patterns) in enumerate(rules):
            for variant in ("", "unless") if language in ("en", "es", "pl") else ("",):
                lines += [
                    f"  - id: {language}.{signal}.{i}{variant and '.' + variant}",
                    f"    description: {signal} {i}",
                    f"    signal: {signal}",
                    "    patterns:",
                ]
                for p in patterns:
                    lines.append(f"      - {p}" if not p.startswith("fuzzy") else f"        {p}")
                if variant == "unless":
                    lines += ["    unless:", "      - phrase: just kidding"]
                lines += ["    examples:", f"      match: [{json.dumps(_examples(patterns))}]"]
        (directory / f"{language}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


# Common words of six languages, for random phrases.
_WORD_LIST = """
able about above across act add after again age ago agree air all almost alone along already
also always amazing among angry animal another answer any anyone anything apart apple area arm
around arrive art ask aunt away baby back bad bag ball band bank base bath beach bear beautiful
because bed before begin behind believe bell best better between big bike bird birthday bit
black blue board boat body book bored boss both bottle box boy brain bread break breakfast
bring brother brown build bus busy buy cake call camera camp can car card care carry cat catch
cause chair chance change chat cheap check child choose city class clean clear climb close
cloud club coach coat code coffee cold color come cook cool corner could count country course
cousin cover crazy cream cry cup cut dad dance dark date daughter day dead deal dear decide deep
dinner dirty doctor dog door double down draw dream dress drink drive drop dry during each early
earth easy eat egg either else empty end enjoy enough enter even evening ever every exam
example eye face fact fall family famous far farm fast father favorite feel few field fight
fill film final find fine finger finish fire first fish fit floor flower fly follow food foot
forest forget form free fresh friend front fruit full fun funny future game garden gate girl
give glad glass gold good grade great green ground group grow guess guitar guy hair half hand
happen happy hard hat hate have head hear heart heavy hello help here hide high hill history
hold holiday home homework hope horse hospital hot hotel hour house huge hungry hurry idea ill
important inside island jacket job join joke juice jump just keep key kick kid kind kitchen
know lake land language large last late laugh learn leave left leg lesson letter library lie
light like line lion list listen little live long look lose lot loud love low lucky lunch
machine make man many map market match math matter maybe meal mean meet message middle milk
mind minute miss mistake mom money month moon morning mother mountain mouse move movie music
name near neck need never new news next nice night noise normal north nose note nothing now
number ocean offer office often old open order other outside paint paper parent park party pass
past pay pen people perfect person phone piano picture piece pink place plan plant play please
pocket point police pool poor post practice present pretty price problem project pull push
question quick quiet rain read ready real reason red remember rest rice rich ride right river
road rock room round rule run sad safe salt same sand save say school science sea season seat
second see sell send sentence serious shape share sheep shirt shoe shop short shout show shy
sick side sign silver simple sing sister sit size skate skin sky sleep slow small smart smile
snow soft song soon sorry sound soup space speak special sport spring square stand star start
station stay step stick still stone stop store story street strong student study stupid sugar
summer sun sure surprise sweet swim table take talk tall taste tea teach team teeth tell test
thank thing think ticket tidy tiger time tired today together tomorrow tonight tooth top touch
town toy train travel tree trip trouble true try turn twice type uncle under understand until
use usual very village visit voice wait wake walk wall want warm wash watch water way wear
weather week weekend welcome well west wet what wheel when where white whole why wide wife wild
win wind window winter wish with woman wonder wood word work world worry write wrong yard year
yellow young zoo
casa perro gato escuela amigo comer hablar mañana noche tiempo
dom pies kot szkoła przyjaciel jeść mówić jutro noc czas
haus hund katze schule freund essen sprechen morgen nacht zeit
maison chien chat école ami manger parler demain nuit temps
дом собака кошка школа друг есть говорить завтра ночь время
"""
WORDS = _WORD_LIST.split()


def synthetic_rules(n: int, rng: random.Random) -> list[Rule]:
    """``n`` rules like a big pack's: phrases of two to four words from
    ``WORDS`` (65%), single words (15%) and fuzzy words (10%) made of two
    joined words (as brand names and slang are), and regexes (10%) over two
    words with up to two words between them. Written to YAML and loaded."""
    plain = [w for w in WORDS if w.isascii()]
    compounds = sorted({a + b for a, b in (rng.sample(plain, 2) for _ in range(4 * n))})
    long_compounds = [w for w in compounds if len(w) >= 8]
    with tempfile.TemporaryDirectory() as tmp:
        lines = ["language: en", "rules:"]
        for i in range(n):
            kind = rng.random()
            if kind < 0.65:
                pattern = "phrase: " + " ".join(rng.sample(WORDS, rng.randint(2, 4)))
            elif kind < 0.80:
                pattern = "words: [" + ", ".join(rng.sample(compounds, rng.randint(1, 3))) + "]"
            elif kind < 0.90:
                word = rng.choice(long_compounds)
                pattern = f"words: [{word}]\n        fuzzy: 1"
            else:
                a, b = rng.sample(plain, 2)
                pattern = f"regex: '\\b{a}(?: \\w+){{0,2}} {b}s?\\b'"
            lines += [
                f"  - id: synthetic.{i}",
                f"    description: synthetic {i}",
                "    signal: sexual",
                "    patterns:",
                f"      - {pattern}",
                "    examples: {match: [x]}",
            ]
        (Path(tmp) / "synthetic.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return list(load_policy(Path(tmp)).rules)


# --- Messages ---------------------------------------------------------------------------

ORDINARY = [
    "hey how are you doing today? want to play fortnite later on tonight",
    "lol that was so funny, did you see what happened in class today",
    "can you lend me $20 for the game, I'll pay you back on friday",
    "my mom says I have to finish my homework first, brb",
    "gg that match was insane, you carried the whole team",
    "what time is practice tomorrow? coach said 4:30 but idk",
    "Did you finish the science project? It's due on Monday!!",
    "omg I love that song, it's been stuck in my head all week",
    "ok see you at school tomorrow, don't forget your jersey",
    "anyone up for a round of minecraft? server is back up",
    "brb dinner",
    "no way",
    "Cześć! Jak się masz? Co robisz w weekend?",
    "Hallo, wie geht's? Die Straße ist heute gesperrt.",
    "Привет, как дела? Во сколько встречаемся завтра на тренировке?",
    "¿Qué tal el partido de ayer? Estuvo increíble.",
    "haha that's hilarious 😂😂 see you tomorrow 👋",
]
MATCHING = [
    "how old are you?",
    "you're so mature for your age",
    "add me on snap, it's more private",
    "don't tell your parents about us, ok?",
    "are your parents home right now",
    "send me a pic of you",
    "I'm 13 and in 8th grade",
    "wyślij zdjęcie proszę",
    "сколько тебе лет?",
    "cuántos años tienes",
]
OBFUSCATED = [
    "s3nd m3 s0me p1cs of y0u pls",
    "add me on s.n.a.p.c.h.a.t it's more private",
    "you're sooooo pretty, pleeease send a photo",
    "don't tell your p\u0430rents about us, ok? our s\u0435cret",
    "let's talk on sn\u200bap\u200bchat instead",
    "ｓｅｎｄ ｍｅ ａ ｐｉｃ",
]
MIX: list[tuple[str, list[str], float]] = [
    ("ordinary", ORDINARY, 0.85),
    ("matching", MATCHING, 0.10),
    ("obfuscated", OBFUSCATED, 0.05),
]


def messages(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """(kind, text) pairs; a random suffix keeps messages distinct."""
    return sample(rng, MIX, count, ["ok", "lol", "haha", "yes", "no", "idk", "!!"])


def transcript_messages(
    paths: Sequence[Path], rng: random.Random, count: int
) -> list[tuple[str, str]]:
    """(kind, text) pairs: a seeded sample of ``count`` messages of the
    transcripts at ``paths`` (all of them when there are fewer), in order."""
    texts = [
        json.loads(line)["text"]
        for path in paths
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    if len(texts) > count:
        texts = [texts[i] for i in sorted(rng.sample(range(len(texts)), count))]
    return [("transcript", t) for t in texts]


# --- Stages and timing --------------------------------------------------------------------

Stage = tuple[Callable[[Any], object], bool]  # (run one message, takes it normalised)


PACK_POLICY = "engine, the pack's policy"


def stages(matcher: Matcher, policy: Policy | None = None) -> dict[str, Stage]:
    """Each stage of the engine, in pipeline order. Add the next one here."""
    out: dict[str, Stage] = {
        "normalise": (normalise, False),
        "scan": (matcher.scan, True),
        "normalise+scan": (lambda text: matcher.scan(normalise(text)), False),
        "engine (normalise+scan+risk)": (whole_engine(matcher), False),
    }
    if policy is not None:
        out[PACK_POLICY] = (whole_engine(matcher, policy), False)
    return out


def whole_engine(matcher: Matcher, policy: Policy | None = None) -> Callable[[str], object]:
    """``Engine.assess`` as the live policy step runs it: an adult writing to a
    child, 50 conversations in turn, each with its own state, time moving on.
    Without ``policy``, the matcher's rules under default settings, with no
    thresholds and no signal model."""
    if policy is None:
        policy = Policy(rules=matcher.rules, thresholds=(), version="bench")
    engine = Engine(policy, matcher)
    states: dict[str, ConversationState] = {}
    clock = iter(range(10**9))

    def run(text: str) -> object:
        now = float(next(clock))
        conversation = f"c-{int(now) % 50}"
        message = MessageContext(
            text=text,
            conversation=conversation,
            sender="adult",
            recipients=("child",),
            where=Where.DIRECT,
            sender_age="adult",
            recipient_ages={"child": "minor"},
        )
        assessment, states[conversation] = engine.assess(message, states.get(conversation), now)
        return assessment

    return run


def naive(matcher: Matcher) -> Callable[[str], object]:
    """Every distinct pattern, one regex search after another (for context)."""
    compiled = [regex.compile(p.expression) for r in matcher.rules for p in r.patterns]

    def run(text: str) -> object:
        folded = normalise(text).folded
        return [c for c in compiled if c.search(folded)]

    return run


def row(label: str, t: Timing, ordinary: Timing | None = None) -> str:
    text = (
        f"  {label:28} {t.cpu_us:8.2f} µs/msg {t.per_second:>11,.0f} msgs/s  wall {t.wall_us:7.2f}"
    )
    if ordinary is not None:
        text += f"   ordinary {ordinary.cpu_us:6.2f} µs/msg"
    return text


def bench_pack(
    name: str,
    rules: Sequence[Rule],
    backends: Sequence[str],
    data: list[tuple[str, str]],
    runs: int,
    *,
    only: Sequence[str] = (),
    cache: Path | None = None,
    quiet: bool = False,
    policy: Policy | None = None,
) -> dict[str, dict[str, list[float]]]:
    """Time each stage (or only those named in ``only``) for each backend;
    return backend -> stage -> the CPU µs/msg of every run."""
    say = (lambda *a: None) if quiet else print
    texts = [t for _, t in data]
    ordinary = [t for k, t in data if k == "ordinary"]
    normalised = [normalise(t) for t in texts]
    normalised_ordinary = [normalise(t) for t in ordinary]
    say(f"\n{name}: {len(rules):,} rules, {len(texts):,} messages ({len(ordinary):,} ordinary)")
    out: dict[str, dict[str, list[float]]] = {}
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            where = cache or Path(tmp)
            start = time.perf_counter()
            matcher = build_matcher(rules, backend=backend, cache_dir=where)
            cold = time.perf_counter() - start
            start = time.perf_counter()
            build_matcher(rules, backend=backend, cache_dir=where)
            warm = time.perf_counter() - start
        # As a server should once its pack is loaded: keep the long-lived
        # objects out of the collector's way.
        gc.collect()
        gc.freeze()
        hits = sum(len(matcher.scan(n)) for n in normalised)
        cached = f", from cache {warm:.2f} s" if matcher.backend == "hyperscan" else ""
        say(
            f" {matcher.backend}: {matcher.units:,} patterns; build {cold:.2f} s{cached}; "
            f"{hits:,} rule hits"
        )
        say(f"  {'stage':28} {'CPU per message':>15} {'one core':>18}  {'wall µs':>12}")
        out[backend] = {}
        for stage, (run, takes_normalised) in stages(matcher, policy).items():
            if only and stage not in only:
                continue
            batch: Sequence[object] = normalised if takes_normalised else texts
            plain: Sequence[object] = normalised_ordinary if takes_normalised else ordinary
            timing = per_item(batch, run, runs)
            out[backend][stage] = list(timing.cpu_runs)
            by_kind = None if quiet or not plain else per_item(plain, run, runs)
            say(row(stage, timing, by_kind))
        if name != "10k" and backend == backends[0] and not only:
            say(row("naive (per-pattern regex)", per_item(texts[:1000], naive(matcher), runs)))
    return out


def generated_pack() -> list[Rule]:
    with tempfile.TemporaryDirectory() as tmp:
        write_default_pack(Path(tmp))
        return list(load_policy(Path(tmp)).rules)


def load_pack(name: str) -> tuple[list[Rule], Policy | None] | None:
    """The pack's rules, and its policy when it is a pack folder."""
    if name == "default":
        return generated_pack(), None
    if name == "10k":  # the default pack grown to 10,000 rules
        rules = generated_pack()
        return rules + synthetic_rules(10_000 - len(rules), random.Random(7)), None
    try:  # a pack folder, such as policies
        policy = load_policy(Path(name))
    except PolicyError as e:
        print(f"\n{name}: not loaded:\n{e}")
        return None
    return list(policy.rules), policy


BASELINE_STAGES = ("normalise+scan", "engine (normalise+scan+risk)", PACK_POLICY)


def checkout(rev: str, into: Path, packs: Sequence[str] = ()) -> Path:
    """The ``chatguard`` package as of ``rev`` under ``into``, next to a link to
    this ``bench`` folder, so a worker started there imports the old engine
    with today's benchmark; and, as of ``rev`` too, each of ``packs`` that is a
    folder of this repository (the old engine may not read today's pack)."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", "--format=tar", rev, "chatguard", *packs],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / "bench").symlink_to(root / "bench", target_is_directory=True)
    return into


def worker_env() -> dict[str, str]:
    """The environment of a worker run from another tree: without PYTHONPATH,
    so that it imports the ``chatguard`` of the tree it runs from."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def worker(tree: Path, args: list[str]) -> dict[str, dict[str, list[float]]]:
    """One benchmark process run from ``tree``; its JSON result."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.engine", "--worker", *args],
        cwd=tree,
        env=worker_env(),
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, dict[str, list[float]]] = json.loads(done.stdout.splitlines()[-1])
    return result


def _pack_arg(pack: str, root: Path, tree: Path, own: Sequence[str]) -> list[str]:
    """``--packs`` for a worker run from ``tree``: a named pack as it is, a
    folder as an absolute path, inside ``tree`` when it is one of ``own``."""
    path = Path(pack).resolve()
    if not path.is_dir():
        return ["--packs", pack]
    if path.is_relative_to(root) and str(path.relative_to(root)) in own:
        path = tree / path.relative_to(root)
    return ["--packs", str(path)]


def _own_folders(packs: Sequence[str], root: Path) -> list[str]:
    """The packs that are folders of this repository, relative to its root."""
    out = []
    for pack in packs:
        path = Path(pack).resolve()
        if path.is_dir() and path.is_relative_to(root):
            out.append(str(path.relative_to(root)))
    return out


def compare(
    rev: str,
    packs: Sequence[str],
    backends: Sequence[str],
    runs: int,
    count: int,
    *,
    same_pack: bool = False,
    texts: Sequence[Path] = (),
    compiled: bool = False,
) -> None:
    """The engine stages at ``rev`` and now, in alternating worker processes
    (old, new, new, old; each with half the runs), medians of all runs;
    ``compiled``: both sides built as the compiled build. A pack folder of
    this repository is read as of ``rev`` on the old side (old code with its
    own pack), unless ``same_pack``: then both sides read today's (a
    comparison of code alone, for code that reads it)."""
    root = Path(__file__).resolve().parent.parent
    own = [] if same_pack else _own_folders(packs, root)
    with tempfile.TemporaryDirectory() as tmp:
        if compiled:
            old = compiled_checkout(rev, Path(tmp) / "old", own)
            new = compiled_tree(Path(tmp) / "new", own)
        else:
            old, new = checkout(rev, Path(tmp), own), root
        which = "today's packs on both sides" if not own else "each side its own pack"
        print(
            f"baseline {rev} vs the working tree{', both compiled' if compiled else ''} "
            f"({which}); CPU µs per message, medians of {runs} runs"
        )
        side_by_side(old, new, packs, backends, runs, count, own, texts)


def compare_compiled(
    packs: Sequence[str],
    backends: Sequence[str],
    runs: int,
    count: int,
    texts: Sequence[Path] = (),
) -> None:
    """The working tree pure and compiled (``chatguard.native``), as ``compare``
    sets them side by side, both reading the same packs."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        built = compiled_tree(Path(tmp))
        print(f"pure vs compiled, the working tree; CPU µs per message, medians of {runs} runs")
        side_by_side(root, built, packs, backends, runs, count, [], texts)


def compiled_checkout(rev: str, into: Path, own: Sequence[str] = ()) -> Path:
    """Revision ``rev`` built compiled under ``into`` (created), next to a link
    to this ``bench`` folder, with the pack folders ``own`` as of ``rev``: what
    ``checkout`` leaves, as the compiled build."""
    root = Path(__file__).resolve().parent.parent
    source = into / "source"
    source.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", "--format=tar", rev, *native.SOURCES, *own],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    return compiled_tree(into / "built", own, source=source)


def compiled_tree(into: Path, own: Sequence[str] = (), *, source: Path | None = None) -> Path:
    """The source checkout ``source`` (this working tree by default) built
    compiled under ``into`` (``native.build_copy``; created when missing),
    next to a link to this ``bench`` folder, as ``checkout`` leaves an old
    revision: a worker started there runs today's benchmark on the compiled
    engine. Of the pack folders, it links only ``own`` (from ``source``);
    workers read the others from the working tree."""
    root = Path(__file__).resolve().parent.parent
    source = source or root
    into.mkdir(parents=True, exist_ok=True)
    built = native.build_copy(source, into)
    (built / "bench").symlink_to(root / "bench", target_is_directory=True)
    for folder in own:
        (built / folder).symlink_to(source / folder, target_is_directory=True)
    return built


def side_by_side(
    old: Path,
    new: Path,
    packs: Sequence[str],
    backends: Sequence[str],
    runs: int,
    count: int,
    own: Sequence[str],
    texts: Sequence[Path] = (),
) -> None:
    """Each pack and backend run from the trees ``old`` and ``new`` in
    alternating worker processes (old, new, new, old; each with half the
    runs); the medians of all runs and their ratio. ``own``: the pack folders
    each tree reads from itself."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as cache:
        for pack in packs:
            for backend in backends:
                sides = {
                    "old": _pack_arg(pack, root, old, own),
                    "new": _pack_arg(pack, root, new, own),
                }
                args = ["--backends", backend, "--count", str(count)]
                args += ["--runs", str(max(1, runs // 2)), "--cache", cache]
                args += ["--texts", *(str(t.resolve()) for t in texts)] if texts else []
                got: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
                for side in ("old", "new", "new", "old"):
                    tree = old if side == "old" else new
                    result = worker(tree, [*sides[side], *args])
                    for stage, values in result.get(backend, {}).items():
                        got[side].setdefault(stage, []).extend(values)
                print(f"\n{pack}, {backend}:")
                for stage in BASELINE_STAGES:
                    if not (got["old"].get(stage) or got["new"].get(stage)):
                        continue  # not a pack folder
                    a = statistics.median(got["old"].get(stage) or [math.nan])
                    b = statistics.median(got["new"].get(stage) or [math.nan])
                    print(
                        f"  {stage:28} {a:8.2f} -> {b:8.2f} µs/msg "
                        f"({1e6 / a:>9,.0f} -> {1e6 / b:>9,.0f} msgs/s, {a / b:.2f}x)"
                    )


def baseline_arguments(parser: argparse.ArgumentParser, baseline_help: str) -> None:
    """``--baseline``, ``--same-pack`` and the worker's own options, as the
    engine benchmarks take them."""
    parser.add_argument("--baseline", metavar="REV", help=baseline_help)
    parser.add_argument(
        "--same-pack",
        action="store_true",
        help="with --baseline: both sides read today's pack folders (compare code alone)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run, 2,000 messages")
    parser.add_argument(
        "--packs", default="default,10k,policies", help="default, 10k or a pack folder"
    )
    parser.add_argument("--backends", default="hyperscan,fallback", help="matcher backends")
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per stage (median)")
    parser.add_argument("--count", type=int, default=MESSAGES, help="messages per run")
    baseline_arguments(parser, "compare the engine stages with git revision REV")
    parser.add_argument(
        "--texts",
        nargs="+",
        type=Path,
        default=[],
        metavar="JSONL",
        help="time the messages of these transcripts (a sample of --count) instead of the mix",
    )
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="compare the working tree pure and compiled (chatguard.native; needs a C compiler);"
        " with --baseline, REV and the working tree both compiled",
    )
    args = parser.parse_args()
    runs, count = (1, 2000) if args.quick else (args.runs, args.count)
    backends = args.backends.split(",")
    packs = args.packs.split(",")
    if args.baseline:
        compare(
            args.baseline,
            packs,
            backends,
            runs,
            count,
            same_pack=args.same_pack,
            texts=args.texts,
            compiled=args.compiled,
        )
        return
    if args.compiled:
        compare_compiled(packs, backends, runs, count, args.texts)
        return
    rng = random.Random(2024)
    data = transcript_messages(args.texts, rng, count) if args.texts else messages(rng, count)
    results = {}
    for pack in packs:
        loaded = load_pack(pack)
        if loaded is not None:
            rules, policy = loaded
            only = BASELINE_STAGES if args.worker else ()
            results.update(
                bench_pack(
                    pack,
                    rules,
                    backends,
                    data,
                    runs,
                    only=only,
                    cache=args.cache,
                    quiet=args.worker,
                    policy=policy,
                )
            )
    if args.worker:
        print(json.dumps(results))
        return
    print(f"\nmedian of {runs} runs; CPU time of one thread; Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
