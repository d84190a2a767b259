"""Plain-language explanations of provider outcomes, with what the member can do next."""

from __future__ import annotations

from bot.evolink import (
    AccessDenied,
    AuthenticationFailed,
    EvolinkError,
    InsufficientCredits,
    InvalidRequest,
    NotFound,
    ProviderUnreachable,
    RateLimited,
)
from bot.evolink.spec import whole_seconds_up
from bot.media.errors import format_seconds
from storage.models import Job

# EVOLINK_API.md §4.2: one message per task error code.
TASK_ERROR_MESSAGES: dict[str, str] = {
    "content_policy_violation": (
        "The provider's safety filter blocked this edit (real faces, celebrities, logos, "
        "NSFW or violent content are refused). Change the clip or the prompt and try again."
    ),
    "invalid_parameters": (
        "The provider refused the inputs (length, size, format or resolution). Check that the "
        "clip is a normal 720p–4K .mp4/.mov and try again."
    ),
    "image_processing_error": (
        "The provider could not read one of the reference images. Use a plain JPEG or PNG "
        "and try again."
    ),
    "image_dimension_mismatch": (
        "A reference image does not fit the clip's shape. Crop it closer to the video's "
        "aspect ratio and try again."
    ),
    "request_cancelled": (
        "The edit was cancelled at the provider. Run /edit again if you still want it."
    ),
    "generation_failed_no_content": (
        "The model produced no video for this prompt. Try rewording the prompt; a plain retry "
        "sometimes works too."
    ),
    "service_error": "The provider had an internal problem. Try again in a minute.",
    "generation_timeout": (
        "The edit took too long at the provider. Try again later, or with a simpler prompt."
    ),
    "resource_exhausted": "The provider is out of capacity right now. Try again in a few minutes.",
    "quota_exceeded": "The provider is rate-limiting this bot. Try again in a few minutes.",
    "service_unavailable": "The provider is temporarily unavailable. Try again in a few minutes.",
    "resource_not_found": "The provider lost track of this edit. Run /edit again.",
    "unknown_error": "The provider failed for an unknown reason. Try again shortly.",
}

GENERIC_TASK_FAILURE = "The provider could not complete this edit. Try again shortly."

# Create-call failures that provably created nothing: the reservation is released. These
# are every class EvolinkClient.create_edit_task raises besides SubmissionOutcomeUnknown.
SUBMIT_ERROR_MESSAGES: dict[type[EvolinkError], str] = {
    InvalidRequest: "The provider refused the request as invalid. A moderator has the details.",
    AuthenticationFailed: "The bot's provider key is not working. A moderator must fix it.",
    InsufficientCredits: "The bot's provider account is out of credits. Tell a moderator.",
    AccessDenied: "The bot's provider account may not use this model. Tell a moderator.",
    NotFound: "The provider does not offer this model right now. Tell a moderator.",
    RateLimited: "The provider is busy. Nothing was charged; try again in a minute.",
    ProviderUnreachable: "The provider cannot be reached. Nothing was charged; try again later.",
}
GENERIC_SUBMIT_FAILURE = "The provider refused the request. Nothing was charged; try again later."

SUBMISSION_UNKNOWN_MESSAGE = (
    "The provider did not answer in time, so we cannot tell whether this edit started. "
    "It will not be sent again automatically: if the provider reports it, the bot picks it up "
    "and posts the result. Moderators have been alerted and your quota stays reserved until "
    "it is settled."
)
OUTCOME_UNCONFIRMED = "outcome_unconfirmed"  # the error code of an uncertain edit settled as lost
OUTCOME_UNCONFIRMED_MESSAGE = (
    "The provider never confirmed whether this edit ran, and no result turned up in time. "
    "It counts as used because the provider may have charged for it; moderators have been "
    "alerted and can give the seconds back if the provider shows nothing was created."
)
RESULT_EXPIRED_MESSAGE = (
    "The provider finished, but its download link expired before the bot could fetch the "
    "video. Moderators have been alerted."
)
RESULT_INVALID_MESSAGE = (
    "The provider returned something that is not a playable video. Moderators have been alerted."
)
PROVIDER_BALANCE_TOO_LOW = (
    "The bot's provider account does not have the credits for this edit right now. "
    "Nothing was charged; please tell a moderator."
)
RESULT_TOO_LARGE_MESSAGE = (
    "The finished video is larger than the bot may keep. Moderators have been alerted."
)
# Outcomes where the provider may have been paid: the charge stays while a moderator checks.
TASK_NOT_FOUND_MESSAGE = (
    "The provider cannot find this edit right now. A moderator is checking it and the bot "
    "keeps asking; your seconds stay reserved until it is sorted out."
)
TASK_LOST_MESSAGE = (
    "The provider could not find this edit for a whole day, so the bot stopped waiting. It "
    "stays charged because the provider may have billed it; moderators have been alerted."
)
RESULT_MISSING_MESSAGE = (
    "The provider finished this edit but sent no video. A moderator is checking; the edit "
    "stays charged until then."
)
STATUS_POST_FAILED = "status_post_failed"  # the error code of a job stopped before submit
STATUS_POST_FAILED_MESSAGE = (
    "I couldn't post the edit's status message in this channel, so I did not start it. "
    "Nothing was charged; check my permissions here or use another channel."
)
DELIVERY_FAILED = "delivery_failed"  # the error code of a job whose posting gave up
JOB_GONE = "That edit no longer exists."
NOT_YOUR_JOB = "Only the member who asked for this edit (or a moderator) can use these buttons."
RESULT_GONE = "The result of this edit is no longer kept, so it can't be edited again."
INPUTS_GONE = (
    "The clip and images of this edit are no longer kept by the bot, so it can't run it "
    "again. Use /edit with the clip to start a new edit."
)
DISK_LOW = (
    "The bot is short of disk space, so it can't take new edits right now. Nothing was "
    "charged; please try again later."
)
# The process that had checked a job's files died before publishing them; another process
# took the job over without the files, so its reservation is released.
TAKEN_OVER_UNPUBLISHED = "taken_over_unpublished"
TAKEN_OVER_UNPUBLISHED_MESSAGE = (
    "The bot process handling this edit stopped after checking your files and before sending "
    "them, so the edit was stopped and nothing was charged. Please run /edit again."
)
RESTARTED_WHILE_CHECKING = (
    "The bot restarted while checking your files, so this edit was stopped before anything "
    "was charged. Please run /edit again."
)


def explain_task_error(code: str | None) -> str:
    return TASK_ERROR_MESSAGES.get(code or "", GENERIC_TASK_FAILURE)


def explain_submit_error(error: EvolinkError) -> str:
    return SUBMIT_ERROR_MESSAGES.get(type(error), GENERIC_SUBMIT_FAILURE)


def billing_note(job: Job) -> str:
    """How a reserved job is billed, saying so when the provider's clamp applies (§6: a clip
    under the model's minimum is billed as the minimum, one over the maximum as the maximum).

    For a long clip the provider's page does not say whether all of it is edited; the member
    is told it may be only the start (README, "Behaviour worth knowing").
    """
    billed = job.billed_seconds
    if job.duration_s is None or billed is None:
        return f"billed as {billed} s"
    length = whole_seconds_up(job.duration_s)
    clip = f"{format_seconds(job.duration_s)} clip"
    if length < billed:
        return f"{clip}, billed as {billed} s, this model's minimum"
    if length > billed:
        return (
            f"{clip}, billed as {billed} s, this model's maximum; the provider may edit "
            f"only the first {billed} s"
        )
    return f"billed as {billed} s"
INTAKES_BUSY = (
    "The bot is checking many clips right now; try again in a minute. Nothing was charged."
)


def window_text(window_s: int) -> str:
    """"10 minutes", "1 minute", "90 seconds"."""
    minutes, seconds = divmod(window_s, 60)
    if seconds:
        return f"{window_s} seconds"
    return f"{minutes} minute{'s' if minutes > 1 else ''}"


def attempt_limit_reached(limit: int, window_s: int) -> str:
    """Why a member whose attempts keep being refused must wait (the time is added apart)."""
    return (
        f"You have had {limit} edits refused in the last {window_text(window_s)}, so new ones "
        "wait for a while. Check that the clip and images meet the rules in the refusals "
        "you got before trying again. Nothing was charged."
    )
