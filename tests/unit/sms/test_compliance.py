"""sms.compliance: keyword normalisation, classification and the plain-words opt-out heuristic."""

import pytest

from sms.compliance import (
    HELP_KEYWORDS,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    Keyword,
    classify_keyword,
    default_help_text,
    default_opt_in_text,
    default_opt_out_text,
    looks_like_opt_out,
    normalize_keyword_text,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  STOP  ", "stop"),
        ("Stop.", "stop"),
        ("STOP!!!", "stop"),
        ("¡Alto!", "alto"),
        ("«stop»", "stop"),
        ("“Stop”", "stop"),
        ("Stop\t\n  All", "stop all"),
        ("ＳＴＯＰ", "stop"),  # full-width → NFKC
        ("🛑 STOP 🛑", "stop"),
        ("STOP\u200b", "stop"),  # zero-width space
        ("opt-out", "opt-out"),  # inner punctuation kept
        ("...", ""),
        ("", ""),
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),  # casefold, not lower
    ],
)
def test_normalize_keyword_text(raw, expected):
    assert normalize_keyword_text(raw) == expected


def test_keyword_lists_match_api_md():
    assert OPT_OUT_KEYWORDS == {
        "stop", "stopall", "stop all", "unsubscribe", "cancel", "end", "quit", "revoke", "optout", "opt out",
    }
    assert OPT_IN_KEYWORDS == {"start", "unstop", "yes"}
    assert HELP_KEYWORDS == {"help", "info"}


@pytest.mark.parametrize(
    "text",
    [
        "STOP", "stop", "sToP", "Stop.", " stop ", "STOP!", "stop?", "STOPALL", "Stop All", "stop   all",
        "UNSUBSCRIBE", "Cancel", "end", "QUIT", "Revoke", "OPTOUT", "opt out", "Opt Out!", "opt-out", "OPT_OUT",
        "stop-all", "ＳＴＯＰ", "'stop'", "(stop)",
    ],
)
def test_opt_out_keywords(text):
    assert classify_keyword(text) is Keyword.OPT_OUT


@pytest.mark.parametrize("text", ["START", "start.", "Unstop", "YES", "yes!", " Yes "])
def test_opt_in_keywords(text):
    assert classify_keyword(text) is Keyword.OPT_IN


@pytest.mark.parametrize("text", ["HELP", "help?", "Info", "INFO."])
def test_help_keywords(text):
    assert classify_keyword(text) is Keyword.HELP


@pytest.mark.parametrize(
    "text",
    [
        "stop texting me at 5", "Stop please", "PLEASE CANCEL", "stopped", "unstoppable", "s t o p", "st op",
        "yes please", "help me", "information", "", "   ", "!!!", "Thanks",  # "stop stop" is STOP since #10 (test_compliance_reasonable_means.py)
    ],
)
def test_not_a_keyword(text):
    assert classify_keyword(text) is None


def test_classify_tolerates_none():
    assert classify_keyword(None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        # every keyword is also a plain-words opt-out
        *sorted(OPT_OUT_KEYWORDS),
        "Stop.",
        # examples from the brief / FCC "any reasonable means"
        "please stop texting me",
        "remove me",
        "stop texting me at 5",
        "unsubscribe me please",
        "don't text me",
        "Don’t text me again",
        "do not contact this number",
        "no more texts",
        "No more messages please",
        "take me off your list",
        "Take me off",
        "remove me from this list.",
        "Please remove my number",
        "stop please",
        "please stop",
        "STOP STOP STOP",
        "cancel please",
        "stop it",
        "stop sending me these",
        "stop all these messages",
        "I want to opt out",
        "how do I unsubscribe?",
        "I do not want these messages",
        "I no longer wish to receive texts",
        "leave me alone",
        "wrong number",
        "I revoke my consent",
        # Spanish
        "alto",
        "ALTO!",
        "Para",
        "basta",
        "no más mensajes",
        "no mas mensajes por favor",
        "deja de enviarme mensajes",
        "quiero darme de baja",
        "no me envíen más",
    ],
)
def test_looks_like_opt_out(text):
    assert looks_like_opt_out(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "Thanks, see you at 5",
        "stopped by the shop today?",
        "Can you stop by at 5?",
        "I'll stop by tomorrow please",
        "I can't stop laughing",
        "Don't stop",
        "unstoppable",
        "Please cancel my appointment",
        "cancel it",
        "The end",
        "Did the meeting end?",
        "The sale will end. Text me the details",
        "para mañana?",
        "Es para mi hermano",
        "I'm locked out of the system",
        "can you drop me off at 5?",
        "get me out of here",
        "Don't call me, text me instead",
        "Yes",
        "START",
        "HELP",
        "OK thanks",
        "Sounds good",
        "",
        "stopwatch",
        "Backstop",
    ],
)
def test_normal_replies_are_not_opt_outs(text):
    assert looks_like_opt_out(text) is False


def test_default_help_text():
    text = default_help_text("Acme Dental")
    assert "Acme Dental" in text
    assert "Reply STOP to unsubscribe." in text
    assert "Msg&data rates may apply." in text
    assert "support@acme.test" in default_help_text("Acme", contact="support@acme.test")


def test_default_opt_out_text_is_ctia_style():
    text = default_opt_out_text("Acme Dental")
    assert text.startswith("Acme Dental")
    assert "unsubscribed" in text
    assert "will not receive any more messages" in text
    assert "Reply START to resubscribe." in text
    assert "http" not in text  # no marketing / links


def test_default_texts_with_blank_org_name():
    assert default_opt_out_text("  ").startswith("This service:")
    assert "Reply STOP" in default_opt_in_text("Acme")


def test_keyword_enum_values_are_strings():
    assert Keyword.OPT_OUT == "opt_out"
    assert Keyword("help") is Keyword.HELP
