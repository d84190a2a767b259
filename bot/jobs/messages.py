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
from bot.evolink.spec import (
    MODEL_SPECS,
    QUOTA_REFERENCE_MODEL,
    ModelSpec,
    spec_for,
    whole_seconds_up,
)
from bot.media.errors import format_clock, format_seconds
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


def model_not_offered(model: str) -> str:
    """An edit asked for a model the operator has not enabled (or no longer offers)."""
    return (
        f"This bot does not offer the model {model} (any more), so nothing was started or "
        "charged. Use /edit and pick one of the models it offers."
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
    """How a reserved job is billed: which part of the clip when it was cut, and the
    provider's clamp when it applies (§6: a clip under the model's minimum is billed as the
    minimum). A clip longer than the maximum is always cut, so that clamp never applies."""
    billed = job.billed_seconds
    cut = job.source.cut
    if cut is not None:
        end = cut.start_s + cut.duration_s
        return (
            f"editing {format_clock(cut.start_s)}–{format_clock(end)} of your "
            f"{format_clock(cut.source_duration_s)} clip, billed as {billed} s"
        )
    if job.duration_s is not None and billed is not None and (
        whole_seconds_up(job.duration_s) < billed
    ):
        return f"{format_seconds(job.duration_s)} clip, billed as {billed} s, this model's minimum"
    return f"billed as {billed} s"


INTAKES_BUSY = (
    "The bot is checking many clips right now; try again in a minute. Nothing was charged."
)


def counted_seconds(job: Job) -> int:
    """What the job's billed seconds count against quotas (its model's price weighting):
    what the ledger reserved for it, and what a refund gives back."""
    return spec_for(job.model).quota_seconds(job.billed_seconds or 0)


def price_note(job: Job) -> str:
    """The chosen model, the credits this edit costs and, where the model's price makes them
    differ from the billed seconds, what it counts against the member's quota."""
    text = f"{job.model}: {job.credits or 0:g} credits"
    counted = counted_seconds(job)
    if counted != (job.billed_seconds or 0):
        text += f", counted as {counted} s of your quota"
    return text + "."


def quota_rule(specs: tuple[ModelSpec, ...]) -> str:
    """How clips are billed and quotas stay fair across prices (ModelSpec.quota_seconds),
    for /quota; the README and the moderator guide state the same rule."""
    ranges = (specs[0].duration_range_text if len(specs) == 1
              else ", ".join(f"{spec.name} {spec.duration_range_text}" for spec in specs))
    text = f"A clip is billed by its length, rounded up: {ranges} per edit."
    reference = MODEL_SPECS[QUOTA_REFERENCE_MODEL]
    weighted = [spec for spec in specs if spec.credits_per_second != reference.credits_per_second]
    if weighted:
        text += f" Quotas count {reference.name} seconds: " + ", ".join(
            f"a {spec.name} second counts {spec.credits_per_second:g}/"
            f"{reference.credits_per_second:g} of one" for spec in weighted
        ) + " (their prices), rounded up per edit."
    return text


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
