"""What a front end hands the engine: validated at the boundary, free of Discord types."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from bot.evolink.spec import MAX_PROMPT_CHARS, EditModel


class InputFile(BaseModel):
    url: str
    declared_size: int | None = None  # what the uploader's platform claims; never trusted alone
    media_token: str | None = None  # one of our archived files, read from disk, not fetched


class EditRequest(BaseModel):
    guild_id: int
    channel_id: int
    # Channel rules apply to the parent channel when the command runs inside a thread.
    rules_channel_id: int | None = None
    user_id: int
    role_ids: list[int] = Field(default_factory=list)
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    keep_audio: bool = True
    video: InputFile
    # Seconds into the clip where the edited part begins; checked by the engine, which
    # explains a bad value (Discord's number options can carry NaN and infinity).
    start_s: float = 0.0
    video_is_user_link: bool = False
    images: list[InputFile] = Field(default_factory=list)
    parent_job_id: int | None = None
    # The server's preferred locale (Discord's value, e.g. "fr"): the language of the job's
    # public messages, also when the tracker posts them later.
    public_locale: str = "en-US"
    model: EditModel | None = None  # None: the default model (EVOLINK_MODEL)

    @field_validator("prompt")
    @classmethod
    def _prompt_has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the prompt is empty")
        return value.strip()


class Requester(BaseModel):
    """Who asks, as far as the engine's permission rules care."""

    user_id: int
    role_ids: list[int] = Field(default_factory=list)
    manages_guild: bool = False  # Discord's Manage Server permission
