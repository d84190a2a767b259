"""The shipped catalogs: complete, faithful to each msgid's placeholders and markup, current
with the code, and read the way each Discord locale expects."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.evolink.spec import MODEL_SPECS
from bot.i18n import N_, SHIPPED_LOCALES, Catalogs, Number, Span, Text, babel_locale, english
from bot.i18n.locales import LOCALE_DIR
from cogs.edit import MENU_NAME
from cogs.views import (
    MODEL_LABEL,
    PROMPT_LABEL,
    PROMPT_PLACEHOLDER,
    EditAgainButton,
    RerunButton,
)

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [locale for locale in SHIPPED_LOCALES if locale != "en"]
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
# What must survive translation untouched: bold markers, code spans (command names such as
# `/jobs`), subtext lines, mentions and timestamps, slash commands in running text, emoji.
CODE = re.compile(r"`[^`]+`")
SLASH_COMMAND = re.compile(
    r"(?<![\w.])/(?:kling-admin(?: (?:jobs|user|limits|budget|role|channels) [a-z]+)?"
    r"|[a-z][-a-z]*)"
)
TOKENS = {
    "bold": re.compile(r"\*\*"),
    "subtext": re.compile(r"^-# ", re.MULTILINE),
    "emoji": re.compile("[✅❌🎬]"),
}


def template() -> list[str]:
    with (LOCALE_DIR / "messages.pot").open("rb") as pot:
        return [str(message.id) for message in read_po(pot) if message.id]


def catalog(locale: str) -> dict[str, str]:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return {
            str(m.id): str(m.string) for m in read_po(po) if m.id and m.string and not m.fuzzy
        }


def slash_commands(text: str) -> list[str]:
    outside_code = CODE.sub("", text)
    return sorted(SLASH_COMMAND.findall(outside_code))


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_message_is_translated_with_the_same_placeholders_and_markup(
    locale: str,
) -> None:
    translations = catalog(locale)
    problems = []
    for msgid in template():
        text = translations.get(msgid)
        if text is None:
            problems.append(f"missing: {msgid!r}")
            continue
        if sorted(PLACEHOLDER.findall(text)) != sorted(PLACEHOLDER.findall(msgid)):
            problems.append(f"placeholders differ: {msgid!r} -> {text!r}")
        if sorted(CODE.findall(text)) != sorted(CODE.findall(msgid)):
            problems.append(f"code spans differ: {msgid!r} -> {text!r}")
        if slash_commands(text) != slash_commands(msgid):
            problems.append(f"slash commands differ: {msgid!r} -> {text!r}")
        for name, token in TOKENS.items():
            if len(token.findall(text)) != len(token.findall(msgid)):
                problems.append(f"{name} differs: {msgid!r} -> {text!r}")
    assert not problems, "\n".join(problems)


def test_the_template_holds_every_marked_text_in_the_code(tmp_path: Path) -> None:
    """`make i18n-extract` was run after the last text changed: the .pot is what the code
    marks (N_ and locale_str), so `make i18n-update` hands translators every text."""
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "--no-location",
         "--omit-header", "-k", "N_", "-k", "locale_str", "-o", str(fresh), "bot", "cogs"],
        cwd=ROOT, check=True, capture_output=True,
    )
    with fresh.open("rb") as pot:
        marked = {str(message.id) for message in read_po(pot) if message.id}
    assert marked == set(template())


@pytest.mark.parametrize("locale", TRANSLATED)
def test_what_discord_shows_in_forms_and_buttons_fits_its_limits(locale: str) -> None:
    """Modal titles and input labels up to 45 characters, placeholders 100, button labels
    80, a context menu's name 32 (discord.com/developers/docs/components/reference)."""
    say = Catalogs().speaker(locale)
    assert len(say(N_("Edit #{job} again", job=10**12))) <= 45
    assert len(say(MENU_NAME)) <= 32
    assert len(say(PROMPT_LABEL)) <= 45
    assert len(say(PROMPT_PLACEHOLDER)) <= 100
    assert len(say(MODEL_LABEL)) <= 45  # a Label's text
    # A select option's label: 100 (the same words as the /edit model choices).
    assert all(len(say(spec.choice_label)) <= 100 for spec in MODEL_SPECS.values())
    assert all(len(say(button.label)) <= 80 for button in (EditAgainButton, RerunButton))


@pytest.mark.parametrize(
    ("discord_locale", "expected"),
    [
        ("de", "de"), ("fr", "fr"), ("ja", "ja"), ("pt-BR", "pt_BR"),
        ("es-ES", "es_ES"), ("es-419", "es_419"), ("en-GB", "en_GB"),
        ("ko", "en_US"), ("pt-PT", "en_US"), ("", "en_US"), (None, "en_US"),
    ],
)
def test_each_discord_locale_reads_its_catalog_or_english(
    discord_locale: str | None, expected: str
) -> None:
    assert babel_locale(discord_locale) == expected


def test_latin_american_spanish_reads_spanish_with_its_own_numbers() -> None:
    catalogs = Catalogs()
    text = N_("{clip} s clip, billed as {billed} s, this model's minimum",
              clip=Number(number=2.5), billed=3)
    assert catalogs.speaker("es-ES")(text).startswith("clip de 2,5 s, cobrado como 3 s")
    assert catalogs.speaker("es-419")(text).startswith("clip de 2.5 s, cobrado como 3 s")


def test_an_unknown_locale_reads_english_with_english_numbers() -> None:
    text = N_("{refused} of {limit} in the last {window}", refused=2, limit=1000,
              window=Span(seconds=90))
    assert Catalogs().speaker("ko")(text) == "2 of 1000 in the last 90 seconds"  # ids stay digits
    assert english(text) == "2 of 1000 in the last 90 seconds"


def test_durations_and_numbers_are_the_readers() -> None:
    say = Catalogs().speaker("de")
    window = N_("{refused} of {limit} in the last {window}", refused=1, limit=3,
                window=Span(seconds=600))
    assert say(window) == "1 von 3 in den letzten 10 Minuten"
    assert say(N_("Elapsed {elapsed}", elapsed=Span(seconds=65, rough=True))) == (
        "Vergangen: 1 Min."
    )
    over = N_("{clip} s clip, billed as {billed} s, this model's minimum",
              clip=Number(number=2.01, rounding="up"), billed=3)
    assert say(over).startswith("Clip von 2,1 s")  # away from the limit, German comma


def test_a_stored_text_is_read_later_in_the_readers_language() -> None:
    """A job's error_message outlives the request: a German member reads it in German."""
    stored = N_("{reason} You can try again {time}.",
                reason=N_("The provider is busy. Nothing was charged; try again in a minute."),
                time="<t:1:R>").stored()
    again = Text.from_stored(stored)
    assert Catalogs().speaker("de")(again) == (
        "Der Anbieter ist ausgelastet. Es wurde nichts berechnet; versuche es in einer Minute "
        "erneut. Du kannst es <t:1:R> erneut versuchen."
    )


@pytest.mark.parametrize("stored", ["Stopped by a moderator: spam {x}", "{}", '{"msgid": 3}', ""])
def test_a_row_written_before_stored_texts_reads_as_it_was(stored: str) -> None:
    assert Catalogs().speaker("fr")(Text.from_stored(stored)) == stored
