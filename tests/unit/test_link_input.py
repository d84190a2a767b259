"""The link rule `/edit video_url:` applies as typed, against any text (property tests)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.media.errors import MediaRejected
from bot.media.urlpolicy import MAX_URL_CHARS, require_https

_URLISH = st.builds(
    lambda host, port, path: f"https://{host}{port}/{path}",
    st.one_of(
        st.text(max_size=80),
        st.from_regex(r"\[[0-9a-fA-F:.%]{0,40}\]?", fullmatch=True),
        st.text(alphabet="ab-_.%0 ", max_size=300),
    ),
    st.one_of(st.just(""), st.integers(-10, 100_000).map(lambda n: f":{n}"), st.just(":")),
    st.text(max_size=50),
)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(), _URLISH))
def test_any_typed_link_is_accepted_or_refused_with_a_member_text(text: str) -> None:
    try:
        require_https(text)
    except MediaRejected as refusal:
        # Refused in words a member understands: never an exception's text.
        assert refusal.reason in (
            "That link is not a valid web address", "Links must use https://"
        ), refusal.reason


def test_links_that_cannot_name_a_server_are_refused_before_any_lookup() -> None:
    for link in (
        "https://[::1/clip.mp4",
        "https://exa mple.com/clip.mp4",
        f"https://{'a' * 64}.com/clip.mp4",
        f"https://{'a.' * 130}com/clip.mp4",
        f"https://example.com/{'p' * MAX_URL_CHARS}",
        "https://ex%00ample.com/clip.mp4",
        "https://example.com:99999/clip.mp4",
        "https://.../clip.mp4",
    ):
        try:
            require_https(link)
        except MediaRejected as refusal:
            assert refusal.code == "url_invalid", link
        else:
            raise AssertionError(f"accepted {link!r}")
    for link in (
        "https://cdn.discordapp.com/attachments/1/2/clip.mp4?ex=66&is=65&hm=ab",
        "https://例え.テスト/clip.mp4",
        "https://my_bucket.s3.example.com/clip.mp4",
        "https://[2001:db8::1]:8443/clip.mp4",
        "https://example.com./clip.mp4",
    ):
        require_https(link)  # well-formed: the engine's full policy decides later
