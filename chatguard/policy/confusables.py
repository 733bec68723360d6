"""Data tables for the text normaliser.

This module owns the *data* the normaliser folds with: look-alike letters,
leetspeak digits, the emoji-to-word table, the invisible and control
characters, and the script ranges used to tell Latin from Cyrillic and Greek.
It holds no logic; ``chatguard.policy.normalise`` decides when each table
applies.

Invariants:

* Every homoglyph and leet entry maps one character to exactly one character,
  so folding with them never moves an offset.
* Keys of the homoglyph tables are lowercase: they are applied after case
  folding (an uppercase Cyrillic ``Ѕ`` has already become ``ѕ``).
* Emoji words are ``emoji_<name>`` tokens, never ordinary words, so a rule
  can name them without colliding with text a user typed. Changing a name is
  a breaking change for every policy pack that uses it.
* Ranges are inclusive ``(first, last)`` code point pairs.

Nothing here may import from the rest of ChatGuard.
"""

from __future__ import annotations

from typing import Final

Ranges = tuple[tuple[int, int], ...]

# --- Look-alike letters ---------------------------------------------------------

#: Cyrillic and Greek letters whose *lowercase* form passes for a Latin letter.
#: Folded inside any word that also has Latin letters, and in whole words when
#: the message has no other Cyrillic or Greek letters (see ``normalise``).
#: Letters outside this table count as genuine Cyrillic/Greek: their presence
#: means the message really is Russian, Ukrainian, Greek, ... and must be left
#: alone.
LOOKALIKE_LOWER: Final[dict[str, str]] = {
    # Cyrillic
    "а": "a",
    "е": "e",
    "ё": "ë",
    "о": "o",
    "р": "p",
    "с": "c",
    "у": "y",
    "х": "x",
    "к": "k",
    "і": "i",
    "ї": "ï",
    "ј": "j",
    "ѕ": "s",
    "ԁ": "d",
    "ԛ": "q",
    "ԝ": "w",
    "һ": "h",
    "ӏ": "l",
    "ѵ": "v",
    "ү": "y",
    # Greek
    "α": "a",
    "ι": "i",
    "κ": "k",
    "ν": "v",
    "ο": "o",
    "ρ": "p",
    "υ": "u",
    "χ": "x",
}

#: Letters that pass for Latin only in their *uppercase* form (В, Н, М, Т ...).
#: After case folding they are ordinary Russian/Greek letters, so they are
#: folded only inside a word that already mixes in Latin letters ("НОТ" stays,
#: "HОТ" with a Latin H becomes "hot").
LOOKALIKE_UPPER_ONLY: Final[dict[str, str]] = {
    # Cyrillic
    "в": "b",
    "н": "h",
    "м": "m",
    "т": "t",
    "г": "r",
    "п": "n",
    "ь": "b",
    # Greek
    "β": "b",
    "γ": "y",
    "ε": "e",
    "η": "n",
    "τ": "t",
    "ω": "w",
}

#: Look-alikes that no Russian, Ukrainian, Bulgarian or Greek writer types:
#: seeing one is enough to fold a message's all-look-alike words even when the
#: message has no Latin letters at all ("ѕех").
STRONG_LOOKALIKES: Final[frozenset[str]] = frozenset("ѕԁԛԝһӏ")

#: Latin-script letters that only "fancy text" generators produce (small
#: capitals, IPA look-alikes). No ordinary language uses them, so they are
#: always folded. Dotless ı is deliberately absent: it is a Turkish letter.
LATIN_LOOKALIKES: Final[dict[str, str]] = {
    "ᴀ": "a",
    "ʙ": "b",
    "ᴄ": "c",
    "ᴅ": "d",
    "ᴇ": "e",
    "ꜰ": "f",
    "ɢ": "g",
    "ʜ": "h",
    "ɪ": "i",
    "ᴊ": "j",
    "ᴋ": "k",
    "ʟ": "l",
    "ᴍ": "m",
    "ɴ": "n",
    "ᴏ": "o",
    "ᴘ": "p",
    "ʀ": "r",
    "ꜱ": "s",
    "ᴛ": "t",
    "ᴜ": "u",
    "ᴠ": "v",
    "ᴡ": "w",
    "ʏ": "y",
    "ᴢ": "z",
    "ɑ": "a",
    "ɡ": "g",
    "ɩ": "i",
    "ȷ": "j",
    "ǀ": "l",
}

# --- Leetspeak ---------------------------------------------------------------------

#: Digits and symbols read as letters inside a word. 2, 6 and 8 are left out on
#: purpose: in chat they stand for "to", "b"/"g" and "ate" ("gr8", "l8r") as
#: often as for letters, and a word holding one is treated as a code or a
#: number, not leetspeak. "1" and "|" are ambiguous between i and l; rules
#: should accept either (``[il]``).
LEET: Final[dict[str, str]] = {
    "0": "o",
    "1": "i",
    "3": "e",
    "4": "a",
    "5": "s",
    "7": "t",
    "9": "g",
    "@": "a",
    "$": "s",
    "!": "i",
    "|": "l",
}

#: Leet characters that may also be read at the very start or end of a word
#: (see ``normalise`` for when). "!" and "|" are excluded there: at a word's
#: edge they are punctuation ("hi!"); so is "4", which at an edge is "for" or
#: "fore" ("b4", "4ever").
LEET_AT_EDGE: Final[frozenset[str]] = frozenset("013579$")

# --- Separators inside words ---------------------------------------------------------

#: Characters that may separate the single letters of a split word
#: ("s.n.a.p", "s_n_a_p"). A plain space also separates. The comma is absent
#: so that lists ("a, b, c") stay lists.
SPLIT_SEPARATORS: Final[str] = "._-*/\\~+=#^|•·"

#: Single-letter words ordinary English chat strings together with spaces
#: ("u r a", "x x x"). A space-split run made only of these is left alone.
COMMON_SINGLE_LETTERS: Final[frozenset[str]] = frozenset("abciknoruxy")


def _words(*lines: str) -> frozenset[str]:
    """The words of ``lines``, each a line of words separated by spaces."""
    return frozenset(word for line in lines for word in line.split())


#: Words that a run of letters spread out with spaces is read back into when
#: it spells several of them ("s e n d m e a p i c" -> "send me a pic"), so
#: that rules written for the words read the run: the words of the requests,
#: threats and moves the rules name, and the short words between them, in the
#: six languages. A run that these words do not spell whole stays one word.
SPLIT_WORDS: Final[frozenset[str]] = _words(
    # en
    "a an the i im me my u ur you your yourself us we our it its this that of in on at to for",
    "and or else no not dont do did just only now tonight later please pls plz more see want",
    "wanna show send pic pics picture pictures photo photos pix selfie selfies nude nudes",
    "noodz vid vids video videos cam camera call facetime snap snapchat sc insta ig whatsapp",
    "wa discord telegram kik add dm text number addy address live where how old are r age",
    "what school grade year meet meetup up come over alone secret keep between tell anyone",
    "anybody nobody one mum mom mam dad parents place house home car room bed shower bath",
    "body naked bra undies underwear pjs pyjamas pajamas bikini swim swimsuit stuff hot sexy",
    "cute kiss touch sex pay money cash robux vbucks gift card post share leak everyone",
    "delete chat",
    # es
    "manda mandame envia enviame foto fotos tu tus te de la el un una desnuda desnudo cuerpo",
    "le digas nadie mama papa secreto nuestro solo sola ven casa mi dame numero dinero paga o",
    "subo video camara",
    # fr
    "envoie moi une toi ta ton tes nue nu corps dis rien personne mere pere notre seul seule",
    "viens chez paye ou je",
    # de
    "schick mir ein eine bild bilder von dir nackt sag keinem niemand niemandem deiner deinem",
    "geheimnis unser allein komm zu zahl oder ich",
    # pt
    "sua tua voce vc nua corpo nao conta pra ninguem mae pai segredo nosso sozinha sozinho",
    "vem minha",
    # pl
    "wyslij zdjecie zdjecia fotke fotki nago swoje twoje nie mow nikomu mamie tacie sekret",
    "nasz sama sam przyjdz do mnie zaplac albo",
)
#: The longest run of spread-out letters that is read back into words (the
#: reading is quadratic in it, at most ``MAX_WORD`` letters a word).
MAX_SPLIT_SEGMENTED: Final[int] = 64

# --- Emoji -------------------------------------------------------------------------------

#: Emoji replaced by a word so that rules can name them. Keys are single code
#: points; a following variation selector or skin tone is absorbed.
EMOJI_WORDS: Final[dict[str, str]] = {
    "📷": "emoji_camera",
    "📸": "emoji_camera",
    "📹": "emoji_video",
    "🎥": "emoji_video",
    "🤳": "emoji_selfie",
    "👻": "emoji_ghost",
    "📱": "emoji_phone",
    "📞": "emoji_phone",
    "☎": "emoji_phone",
    "🍆": "emoji_eggplant",
    "🍑": "emoji_peach",
    "💦": "emoji_droplets",
    "👅": "emoji_tongue",
    "👄": "emoji_lips",
    "💋": "emoji_kiss",
    "😘": "emoji_kiss",
    "😈": "emoji_devil",
    "🥵": "emoji_hot",
    "👙": "emoji_bikini",
    # One word for swimwear and underwear: every language's rules name it.
    "🩱": "emoji_bikini",
    "🩲": "emoji_bikini",
    "🛏": "emoji_bed",
    # Clothes named only by what is taken off: "bez 👕" (without a shirt).
    "👕": "emoji_shirt",
    "👚": "emoji_shirt",
    "🚿": "emoji_shower",
    "🔞": "emoji_18plus",
    "🤫": "emoji_shush",
    "🤐": "emoji_zipped",
    "🔒": "emoji_lock",
    "🚪": "emoji_door",
    "㊙": "emoji_secret",
    "🎁": "emoji_gift",
    "💰": "emoji_money",
    "💵": "emoji_money",
    "💸": "emoji_money",
    "💲": "emoji_money",
    "🤑": "emoji_money",
    "📍": "emoji_pin",
    "🗺": "emoji_map",
    "🏠": "emoji_house",
    "🏡": "emoji_house",
    "🚗": "emoji_car",
    # Where and how, in a meeting spelt in pictures: "🚗 at the 🅿️ behind 🏫
    # thurs 4pm. dont 🗣️ to mum".
    "🏫": "emoji_school",
    "🅿": "emoji_parking",
    "🗣": "emoji_speak",
}

#: Code points treated as emoji when deciding whether a zero-width joiner or a
#: skin-tone modifier belongs to an emoji sequence (an approximation of
#: Extended_Pictographic that needs no third-party Unicode tables).
EMOJI_RANGES: Final[Ranges] = (
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x2194, 0x21AA),
    (0x231A, 0x23FF),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25FE),
    (0x2600, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3299),
    (0x1F000, 0x1FAFF),
)

# --- Invisible and control characters --------------------------------------------

#: C0/C1 controls other than tab and newline: turned into a space.
CONTROL_RANGES: Final[Ranges] = ((0x00, 0x08), (0x0B, 0x1F), (0x7F, 0x9F))

#: Removed everywhere. Recorded as evasion only when found inside a word of
#: Latin, Greek or Cyrillic letters and digits: there they exist to break a
#: match, while at word edges or between emoji or Arabic/Indic letters they are
#: ordinary typing.
INVISIBLE_RANGES: Final[Ranges] = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # arabic letter mark
    (0x115F, 0x1160),  # hangul fillers
    (0x17B4, 0x17B5),  # khmer inherent vowels
    (0x180E, 0x180E),  # mongolian vowel separator
    (0x200B, 0x200F),  # zero width space, non-joiner, joiner, LRM, RLM
    (0x202A, 0x202C),  # bidi embeddings and pop
    (0x2060, 0x2064),  # word joiner, invisible operators
    (0x2066, 0x206F),  # bidi isolates, deprecated format characters
    (0x3164, 0x3164),  # hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),  # zero width no-break space / BOM
    (0xFFA0, 0xFFA0),  # halfwidth hangul filler
    (0x1D173, 0x1D17A),  # musical format controls
    (0xE0100, 0xE01EF),  # variation selectors supplement
)

#: Bidi overrides reverse what the reader sees; always recorded.
BIDI_OVERRIDES: Final[str] = "\u202d\u202e"

#: Tag characters: ordinary only inside a flag sequence (🏴 + tags); anywhere
#: else they smuggle invisible text and are recorded.
TAG_RANGES: Final[Ranges] = ((0xE0001, 0xE0001), (0xE0020, 0xE007F))
TAG_BASE: Final[str] = "\U0001f3f4"

#: Skin tones: absorbed into a preceding emoji, kept when they stand alone.
EMOJI_MODIFIER_RANGES: Final[Ranges] = ((0x1F3FB, 0x1F3FF),)

#: Combining enclosing keycap: "1️⃣3️⃣" should read as the digits 13.
KEYCAP: Final[str] = "\u20e3"

# --- Compatibility forms -----------------------------------------------------------

#: Characters NFKC turns into ASCII letters that ordinary writers use
#: (trade mark, numero, temperature units, the information and metro emoji).
#: Folding them is fine; counting them as evasion is not.
BENIGN_COMPAT: Final[frozenset[str]] = frozenset("™℠℡№℃℉ℹⓂ")

#: Fullwidth forms and CJK squared units are ordinary in Chinese, Japanese and
#: Korean text; they count as evasion only in a message without CJK.
FULLWIDTH_RANGES: Final[Ranges] = ((0xFF01, 0xFF5E), (0x3300, 0x33FF))
CJK_RANGES: Final[Ranges] = (
    (0x3040, 0x30FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xAC00, 0xD7AF),
)

# --- Scripts -----------------------------------------------------------------------------

LATIN_LETTER_RANGES: Final[Ranges] = (
    (0x41, 0x5A),
    (0x61, 0x7A),
    (0xC0, 0xD6),
    (0xD8, 0xF6),
    (0xF8, 0x24F),
    (0x1E00, 0x1EFF),
    (0x2C60, 0x2C7F),
    (0xA720, 0xA7FF),
    (0xAB30, 0xAB6F),
)
CYRILLIC_GREEK_RANGES: Final[Ranges] = (
    (0x370, 0x3FF),
    (0x400, 0x52F),
    (0x1C80, 0x1C8F),
    (0x1F00, 0x1FFF),
    (0x2DE0, 0x2DFF),
    (0xA640, 0xA69F),
)

# --- Diacritic folding (``Normalised.folded``) --------------------------------------

#: Latin letters with no canonical decomposition, folded by hand. Letters that
#: do decompose (ę, ñ, ö, ...) are folded to their base letter from the
#: Unicode database over ``FOLD_DECOMPOSABLE_RANGES``.
FOLD_SPECIAL: Final[dict[str, str]] = {
    "ł": "l",
    "ø": "o",
    "đ": "d",
    "ħ": "h",
    "ı": "i",
    "ŀ": "l",
    "ŧ": "t",
    "ĸ": "k",
    "ð": "d",
    "þ": "th",
    "æ": "ae",
    "œ": "oe",
    "ß": "ss",
}
FOLD_DECOMPOSABLE_RANGES: Final[Ranges] = ((0xC0, 0x24F), (0x1E00, 0x1EFF))

#: Generic combining marks, dropped from ``folded`` (accents left over after
#: composition, strike-through and "Zalgo" decorations). Script-specific marks
#: such as Arabic harakat or Indic vowel signs are outside these blocks and stay.
COMBINING_MARK_RANGES: Final[Ranges] = (
    (0x0300, 0x036F),
    (0x1AB0, 0x1AFF),
    (0x1DC0, 0x1DFF),
    (0x20D0, 0x20FF),
    (0xFE20, 0xFE2F),
)
