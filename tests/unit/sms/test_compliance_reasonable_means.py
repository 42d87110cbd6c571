"""Issue #10 point 2 — opt-out replies a person would recognise (docs/compliance.md)."""
import pytest

from sms.compliance import Keyword, classify_keyword, looks_like_opt_out


@pytest.mark.parametrize("text", ["stop stop", "STOP STOP STOP", "Stop. Stop!", "stop, unsubscribe", "quit quit",
                                  "opt out opt out", "STOP-STOP", "alto alto"])
def test_a_repeated_opt_out_keyword_is_that_keyword(text):
    assert classify_keyword(text) is Keyword.OPT_OUT


@pytest.mark.parametrize("text, kind", [("help help", Keyword.HELP), ("start start", Keyword.OPT_IN),
                                        ("AYUDA AYUDA", Keyword.HELP)])
def test_other_keywords_repeated(text, kind):
    assert classify_keyword(text) is kind


@pytest.mark.parametrize("text", ["stop start", "help stop", "stop " * 9, "stop the car", "stop by at 5"])
def test_mixed_or_long_runs_are_not_keywords(text):
    assert classify_keyword(text) is None


@pytest.mark.parametrize("text", ["ALTO", "Parar", "detener", "CANCELAR", "baja", "Darme de baja", "no más", "No mas"])
def test_spanish_opt_out_keywords(text):
    assert classify_keyword(text) is Keyword.OPT_OUT


@pytest.mark.parametrize("text", ["COMENZAR", "iniciar", "Reanudar"])
def test_spanish_opt_in_keywords(text):
    assert classify_keyword(text) is Keyword.OPT_IN


@pytest.mark.parametrize("text", ["AYUDA", "información", "informacion"])
def test_spanish_help_keywords(text):
    assert classify_keyword(text) is Keyword.HELP


@pytest.mark.parametrize("text", ["para", "sí", "si", "no"])
def test_ambiguous_spanish_words_are_not_auto_keywords(text):
    assert classify_keyword(text) is None


@pytest.mark.parametrize("text", ["stpo", "sotp", "stopp", "Stpo please", "unsubscibe", "unsubcribe", "cancle",
                                  "qiut", "optuot"])
def test_misspelt_opt_out_is_flagged_not_classified(text):
    assert classify_keyword(text) is None
    assert looks_like_opt_out(text)


@pytest.mark.parametrize("text", ["shop", "step", "spot", "quite", "send", "and", "top", "story", "ok thanks",
                                  "see you at the shop", "stopped by earlier"])
def test_ordinary_words_near_keywords_are_not_flagged(text):
    assert classify_keyword(text) is None
    assert not looks_like_opt_out(text)
