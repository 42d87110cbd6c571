"""Opt-out / opt-in / help keyword handling (pure functions, no Django).

Two levels (docs/compliance.md "Keywords"):

* :func:`classify_keyword` — the contract: the **whole message**, after
  :func:`normalize_keyword_text`, must be one of the keywords. "Stop.",
  " stop ", "STOP!", "opt out", "opt-out", "Stop All" are opt-outs;
  "stop texting me at 5" is not a keyword.
* :func:`looks_like_opt_out` — a broader heuristic for the FCC "any reasonable
  means" revocation rule (47 CFR 64.1200(a)(10)): plain-words requests such as
  "please stop texting me", "remove me", "no more texts", Spanish "alto".
  It is deliberately conservative about ordinary replies ("stopped by the
  shop", "can you stop by at 5?", "please cancel my appointment").
"""

from __future__ import annotations

import enum
import re
import unicodedata
from typing import Final

__all__ = [
    "Keyword",
    "OPT_OUT_KEYWORDS",
    "OPT_IN_KEYWORDS",
    "HELP_KEYWORDS",
    "normalize_keyword_text",
    "classify_keyword",
    "looks_like_opt_out",
    "default_help_text",
    "default_opt_out_text",
    "default_opt_in_text",
]


class Keyword(str, enum.Enum):
    """Kind of compliance keyword found in an inbound message."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


#: Keywords in normalised form (casefolded, single spaces).
OPT_OUT_KEYWORDS: Final[frozenset[str]] = frozenset(
    {"stop", "stopall", "stop all", "unsubscribe", "cancel", "end", "quit", "revoke", "optout", "opt out"}
)
OPT_IN_KEYWORDS: Final[frozenset[str]] = frozenset({"start", "unstop", "yes"})
HELP_KEYWORDS: Final[frozenset[str]] = frozenset({"help", "info"})

#: The Spanish equivalents that US Spanish-language programs advertise ("Responde ALTO para cancelar,
#: AYUDA para ayuda"); docs/compliance.md gives the sources and why "para" and "sí" are not here.
OPT_OUT_KEYWORDS_ES: Final[frozenset[str]] = frozenset(
    {"alto", "parar", "detener", "cancelar", "baja", "darme de baja", "no mas", "no más"}
)
OPT_IN_KEYWORDS_ES: Final[frozenset[str]] = frozenset({"comenzar", "iniciar", "reanudar"})
HELP_KEYWORDS_ES: Final[frozenset[str]] = frozenset({"ayuda", "informacion", "información"})

_KEYWORDS: Final[dict[str, Keyword]] = {
    **{k: Keyword.OPT_OUT for k in OPT_OUT_KEYWORDS | OPT_OUT_KEYWORDS_ES},
    **{k: Keyword.OPT_IN for k in OPT_IN_KEYWORDS | OPT_IN_KEYWORDS_ES},
    **{k: Keyword.HELP for k in HELP_KEYWORDS | HELP_KEYWORDS_ES},
}
_MAX_KEYWORD_WORDS = 3  # "darme de baja"
_MAX_REPEATED_WORDS = 8  # "stop stop stop …": longer runs are not a keyword message

_WS = re.compile(r"\s+")
# Separators treated like a space between keyword words ("opt-out", "opt_out", "stop-all").
_INNER_SEP = re.compile(r"[\s\-_‐‑‒–—]+")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'"})


def _strip_edges(text: str) -> str:
    """Drop leading/trailing characters that are not letters or digits
    (punctuation, symbols, emoji, variation selectors, control/format chars, spaces)."""
    start, end = 0, len(text)
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return text[start:end]


def normalize_keyword_text(text: str) -> str:
    """Normalise an inbound body for keyword matching.

    NFKC (so full-width "ＳＴＯＰ" becomes "STOP"), Unicode casefold, collapse
    inner whitespace to single spaces, and drop surrounding punctuation,
    symbols and emoji (any leading/trailing non-alphanumeric character).
    Inner punctuation is kept. ``None`` is treated as "".
    """
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _WS.sub(" ", text)
    return _strip_edges(text)


def classify_keyword(text: str) -> Keyword | None:
    """Return the keyword kind when the whole message is a keyword, else ``None``.

    Besides the exact normalised form, "opt-out"/"opt_out"/"stop-all" style
    inner separators are accepted as a space.
    """
    norm = normalize_keyword_text(text)
    if not norm:
        return None
    found = _KEYWORDS.get(norm)
    if found is None:
        found = _KEYWORDS.get(_INNER_SEP.sub(" ", norm))
    if found is None:
        found = _repeated_keyword(norm)
    return found


def _repeated_keyword(norm: str) -> Keyword | None:
    """A keyword said more than once ("stop stop", "STOP. STOP!", "help help", "stop, unsubscribe"):
    the message splits into keywords only, all of one kind. Mixed kinds ("stop start") are no keyword."""
    words = _WORD.findall(_INNER_SEP.sub(" ", norm))
    if not 2 <= len(words) <= _MAX_REPEATED_WORDS:
        return None
    kinds: set[Keyword] = set()
    i = 0
    while i < len(words):
        for size in range(min(_MAX_KEYWORD_WORDS, len(words) - i), 0, -1):
            kind = _KEYWORDS.get(" ".join(words[i:i + size]))
            if kind is not None:
                kinds.add(kind)
                i += size
                break
        else:
            return None
    return kinds.pop() if len(kinds) == 1 else None


# --- plain-words opt-out heuristic ------------------------------------------------------------

_CONTACT_VERBS = r"(?:text(?:ing)?|txt(?:ing)?|messag(?:e|ing)|msg(?:ing)?|sms(?:ing)?|send(?:ing)?|contact(?:ing)?|spam(?:ming)?|bother(?:ing)?|writ(?:e|ing))"
_MESSAGES_NOUN = r"(?:texts?|txts?|messages?|msgs?|sms(?:es)?|spam|notifications?|alerts?|marketing|promos?|promotions?)"
_ME = r"(?:me|us|this (?:number|phone|cell)|my (?:number|phone|cell|phone number|cell number))"
_LIST = r"(?:list|lists|mailing list|texting list|text list|sms list|contact list|database)"
_POLITE = r"(?:\s+(?:please|pls|plz|now|asap|thanks|thank you|thx|immediately|already))*"

_OPT_OUT_PATTERNS: Final[tuple[re.Pattern[str], ...]] = tuple(
    re.compile(p)
    for p in (
        # "stop texting me", "quit sending me stuff", "please stop messaging this number"
        rf"\b(?:stop|quit|cease|end|halt|discontinue)\s+{_CONTACT_VERBS}\b",
        # "stop the texts", "stop all these messages", "end the notifications"
        rf"\b(?:stop|quit|cease|end|halt|cancel|discontinue)\s+(?:(?:the|these|those|your|all|my|any|sending|more)\s+)*{_MESSAGES_NOUN}\b",
        # "stop it", "quit it please" (whole message)
        rf"^(?:(?:please|pls|plz|just|ok|okay)\s+)*(?:stop|quit)\s+(?:it|this|that){_POLITE}$",
        # "unsubscribe me please", "how do I opt out", "opt-out", "optout"
        r"\b(?:unsubscribe|unsub|optout|opt\s*out|opt me out)\b",
        # "remove me", "remove my number please" (nothing after but politeness)
        rf"\b(?:remove|delete|erase|unlist)\s+{_ME}{_POLITE}$",
        # "remove me from your list", "delete my number from these texts"
        rf"\b(?:remove|delete|erase|take)\s+{_ME}\s+(?:off|from|out of)\s+(?:(?:of|your|the|this|ur|all|these|any|future)\s+)*(?:{_LIST}|{_MESSAGES_NOUN}|texting|messaging)\b",
        # "take me off", "take me off please" (whole request)
        rf"\btake\s+{_ME}\s+off{_POLITE}$",
        # "... off your list", "out of the mailing list"
        rf"\b(?:off|out of)\s+(?:your|the|this|ur|all|these)\s+{_LIST}\b",
        # "don't text me", "do not contact this number", "never message me again"
        rf"\b(?:don'?t|do not|dont|never)\s+{_CONTACT_VERBS}\s+{_ME}\b",
        rf"\b(?:don'?t|do not|dont|never)\s+{_CONTACT_VERBS}\s+(?:again|anymore|any more)\b",
        # "no more texts", "no more messages please"
        rf"\bno\s+more\s+(?:{_MESSAGES_NOUN}|texting|messaging)\b",
        # "I don't want these texts", "I do not want to receive messages", "no longer wish to receive"
        rf"\b(?:don'?t|do not|dont|no longer)\s+(?:want|wish|need)\s+(?:to\s+(?:receive|get)\s+)?(?:(?:any|these|your|the|more|those)\s+)*{_MESSAGES_NOUN}\b",
        r"\bno longer\s+(?:want|wish)\s+to\s+(?:receive|get|be contacted)\b",
        r"\bleave me alone\b",
        r"\bwrong number\b",
        r"\brevoke\s+(?:my\s+)?consent\b",
        # Spanish: "no más mensajes", "deja de enviarme", "darme de baja", "no me envíen"
        r"\bno\s+m[aá]s\s+(?:mensajes|textos|sms|msjs?)\b",
        r"\b(?:deja|dejen|dejar|paren|pare|para)\s+de\s+(?:enviar|mandar|escribir|textear)",
        r"\b(?:darme|dame|denme|me doy)\s+de\s+baja\b",
        r"\bno\s+me\s+(?:env[ií]en|manden|escriban|contacten|env[ií]es|mandes|escribas)\b",
    )
)

# Whole-message-only words (too ambiguous inside a sentence: "para mañana?").
_SPANISH_WHOLE: Final[frozenset[str]] = frozenset(
    {"alto", "para", "parar", "pare", "paren", "basta", "cancelar", "baja", "detener", "detente", "no mas", "no más"}
)
# Words that may surround bare opt-out keywords without changing their meaning
# ("stop please", "STOP STOP", "cancel all texts now"). No objects like "it"/"the":
# "cancel it" most likely answers an appointment reminder.
_FILLER: Final[frozenset[str]] = frozenset(
    """please pls plz plez kindly now right away immediately asap thanks thank you thx ty ok okay
    just me all already again texts text messages message msgs sms
    i want to would like id i'd wanna sir maam ma'am hey hi hello omg seriously really
    por favor gracias ya""".split()
)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def looks_like_opt_out(text: str) -> bool:
    """Heuristic: would a reasonable person read ``text`` as "stop messaging me"?

    True for every :data:`OPT_OUT_KEYWORDS` message, a keyword with only
    politeness around it ("stop please", "STOP STOP", "cancel now"), and
    plain-words requests (see module docstring). False for normal replies.
    """
    if classify_keyword(text) is Keyword.OPT_OUT:
        return True
    norm = normalize_keyword_text(text).translate(_APOSTROPHES)
    if not norm:
        return False
    spaced = _INNER_SEP.sub(" ", norm)
    if spaced in _SPANISH_WHOLE:
        return True
    words = _WORD.findall(spaced)
    core = [w for w in words if w not in _FILLER]
    if core and all(w in OPT_OUT_KEYWORDS for w in core):
        return True
    if core and len(core) <= 3 and all(w in OPT_OUT_KEYWORDS or _misspelt_opt_out(w) for w in core):
        return True  # "stpo", "unsubscibe please", "sotp sotp": a guess — flagged, never suppressed
    return any(p.search(spaced) for p in _OPT_OUT_PATTERNS)


# --- misspelt opt-out words ---------------------------------------------------------------------

_FUZZY_TARGETS: Final[tuple[str, ...]] = tuple(
    sorted(w for w in OPT_OUT_KEYWORDS | OPT_OUT_KEYWORDS_ES if " " not in w and len(w) >= 4)
)
# Real words one edit away from an opt-out keyword: ordinary replies, not typos.
_NOT_TYPOS: Final[frozenset[str]] = frozenset(
    """shop step spot slop stow stoop atop soup stomp stob stopped stopping stops store story
    quite quiz suit quilt quid quot quip
    cancer candle canal
    revolve revoke revise
    alta altos auto alti salto
    pagar parir parer parará
    unsubscribed""".split()
)


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (insert, delete, substitute, swap two neighbours), capped at limit+1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def _misspelt_opt_out(word: str) -> bool:
    """One edit from an opt-out keyword (two for the long ones: "unsubscibe", "unsubcribe"), not a real word."""
    if len(word) < 4 or word in _NOT_TYPOS or word in _KEYWORDS:
        return False
    for target in _FUZZY_TARGETS:
        limit = 2 if len(target) >= 8 else 1
        if _edit_distance(word, target, limit) <= limit:
            return True
    return False


# --- default reply texts ---------------------------------------------------------------------


def _org(org_name: str) -> str:
    return (org_name or "").strip() or "This service"


def default_help_text(org_name: str, contact: str | None = None) -> str:
    """CTIA-style HELP reply: program name, optional support contact, STOP instructions, rates."""
    parts = [f"{_org(org_name)}:"]
    if contact:
        parts.append(f"For help, contact {contact.strip()}.")
    parts.append("Reply STOP to unsubscribe. Msg&data rates may apply.")
    return " ".join(parts)


def default_opt_out_text(org_name: str) -> str:
    """CTIA-style STOP confirmation: names the org, confirms no more messages, how to resubscribe."""
    return (
        f"{_org(org_name)}: You have been unsubscribed and will not receive any more messages. "
        "Reply START to resubscribe."
    )


def default_opt_in_text(org_name: str) -> str:
    """Re-subscription confirmation (START/UNSTOP/YES)."""
    return (
        f"{_org(org_name)}: You have been re-subscribed to messages. "
        "Reply HELP for help. Reply STOP to unsubscribe. Msg&data rates may apply."
    )
