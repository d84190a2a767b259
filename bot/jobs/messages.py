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
from bot.i18n import N_, Number, Span, Text
from bot.media.errors import format_clock
from storage.models import Job

# EVOLINK_API.md §4.2: one message per task error code.
TASK_ERROR_MESSAGES: dict[str, Text] = {
    "content_policy_violation": (
        N_("The provider's safety filter blocked this edit (real faces, celebrities, logos, "
        "NSFW or violent content are refused). Change the clip or the prompt and try again.")
    ),
    "invalid_parameters": (
        N_("The provider refused the inputs (length, size, format or resolution). Check that the "
        "clip is a normal 720p–4K .mp4/.mov and try again.")
    ),
    "image_processing_error": (
        N_("The provider could not read one of the reference images. Use a plain JPEG or PNG "
        "and try again.")
    ),
    "image_dimension_mismatch": (
        N_("A reference image does not fit the clip's shape. Crop it closer to the video's "
        "aspect ratio and try again.")
    ),
    "request_cancelled": (
        N_("The edit was cancelled at the provider. Run /edit again if you still want it.")
    ),
    "generation_failed_no_content": (
        N_("The model produced no video for this prompt. Try rewording the prompt; a plain retry "
        "sometimes works too.")
    ),
    "service_error": N_("The provider had an internal problem. Try again in a minute."),
    "generation_timeout": (
        N_("The edit took too long at the provider. Try again later, or with a simpler prompt.")
    ),
    "resource_exhausted": N_(
        "The provider is out of capacity right now. Try again in a few minutes."
    ),
    "quota_exceeded": N_("The provider is rate-limiting this bot. Try again in a few minutes."),
    "service_unavailable": N_(
        "The provider is temporarily unavailable. Try again in a few minutes."
    ),
    "resource_not_found": N_("The provider lost track of this edit. Run /edit again."),
    "unknown_error": N_("The provider failed for an unknown reason. Try again shortly."),
}

GENERIC_TASK_FAILURE = N_("The provider could not complete this edit. Try again shortly.")

# Create-call failures that provably created nothing: the reservation is released. These
# are every class EvolinkClient.create_edit_task raises besides SubmissionOutcomeUnknown.
SUBMIT_ERROR_MESSAGES: dict[type[EvolinkError], Text] = {
    InvalidRequest: N_("The provider refused the request as invalid. A moderator has the details."),
    AuthenticationFailed: N_("The bot's provider key is not working. A moderator must fix it."),
    InsufficientCredits: N_("The bot's provider account is out of credits. Tell a moderator."),
    AccessDenied: N_("The bot's provider account may not use this model. Tell a moderator."),
    NotFound: N_("The provider does not offer this model right now. Tell a moderator."),
    RateLimited: N_("The provider is busy. Nothing was charged; try again in a minute."),
    ProviderUnreachable: N_(
        "The provider cannot be reached. Nothing was charged; try again later."
    ),
}
GENERIC_SUBMIT_FAILURE = N_(
    "The provider refused the request. Nothing was charged; try again later."
)

SUBMISSION_UNKNOWN_MESSAGE = (
    N_("The provider did not answer in time, so we cannot tell whether this edit started. "
    "It will not be sent again automatically: if the provider reports it, the bot picks it up "
    "and posts the result. Moderators have been alerted and your quota stays reserved until "
    "it is settled.")
)
OUTCOME_UNCONFIRMED = "outcome_unconfirmed"  # the error code of an uncertain edit settled as lost
OUTCOME_UNCONFIRMED_MESSAGE = (
    N_("The provider never confirmed whether this edit ran, and no result turned up in time. "
    "It counts as used because the provider may have charged for it; moderators have been "
    "alerted and can give the seconds back if the provider shows nothing was created.")
)
RESULT_EXPIRED_MESSAGE = (
    N_("The provider finished, but its download link expired before the bot could fetch the "
    "video. Moderators have been alerted.")
)
RESULT_INVALID_MESSAGE = (
    N_("The provider returned something that is not a playable video. Moderators have been "
       "alerted.")
)
PROVIDER_BALANCE_TOO_LOW = (
    N_("The bot's provider account does not have the credits for this edit right now. "
    "Nothing was charged; please tell a moderator.")
)
RESULT_TOO_LARGE_MESSAGE = (
    N_("The finished video is larger than the bot may keep. Moderators have been alerted.")
)
# Outcomes where the provider may have been paid: the charge stays while a moderator checks.
TASK_NOT_FOUND_MESSAGE = (
    N_("The provider cannot find this edit right now. A moderator is checking it and the bot "
    "keeps asking; your seconds stay reserved until it is sorted out.")
)
TASK_LOST_MESSAGE = (
    N_("The provider could not find this edit for a whole day, so the bot stopped waiting. It "
    "stays charged because the provider may have billed it; moderators have been alerted.")
)
RESULT_MISSING_MESSAGE = (
    N_("The provider finished this edit but sent no video. A moderator is checking; the edit "
    "stays charged until then.")
)
STATUS_POST_FAILED = "status_post_failed"  # the error code of a job stopped before submit
STATUS_POST_FAILED_MESSAGE = (
    N_("I couldn't post the edit's status message in this channel, so I did not start it. "
    "Nothing was charged; check my permissions here or use another channel.")
)
DELIVERY_FAILED = "delivery_failed"  # the error code of a job whose posting gave up
ARCHIVE_GONE = N_("The archived video is gone.")


def undeliverable(reason: Text) -> Text:
    return N_(
        "The finished video could not be posted: {reason} A moderator can re-post it with "
        "/kling-admin jobs redeliver.", reason=reason,
    )


JOB_GONE = N_("That edit no longer exists.")
NOT_YOUR_JOB = N_("Only the member who asked for this edit (or a moderator) can use these buttons.")
RESULT_GONE = N_("The result of this edit is no longer kept, so it can't be edited again.")
INPUTS_GONE = (
    N_("The clip and images of this edit are no longer kept by the bot, so it can't run it "
    "again. Use /edit with the clip to start a new edit.")
)
DISK_LOW = (
    N_("The bot is short of disk space, so it can't take new edits right now. Nothing was "
    "charged; please try again later.")
)
INTAKE_FAILED = N_(
    "Something went wrong while checking your files. Nothing was charged; please try again."
)


def model_not_offered(model: str) -> Text:
    """An edit asked for a model the operator has not enabled (or no longer offers)."""
    return N_(
        "This bot does not offer the model {model} (any more), so nothing was started or "
        "charged. Use /edit and pick one of the models it offers.", model=model,
    )


# The process that had checked a job's files died before publishing them; another process
# took the job over without the files, so its reservation is released.
TAKEN_OVER_UNPUBLISHED = "taken_over_unpublished"
TAKEN_OVER_UNPUBLISHED_MESSAGE = N_(
    "The bot process handling this edit stopped after checking your files and before sending "
    "them, so the edit was stopped and nothing was charged. Please run /edit again."
)
RESTARTED_WHILE_CHECKING = (
    N_("The bot restarted while checking your files, so this edit was stopped before anything "
    "was charged. Please run /edit again.")
)


def explain_task_error(code: str | None) -> Text:
    return TASK_ERROR_MESSAGES.get(code or "", GENERIC_TASK_FAILURE)


def explain_submit_error(error: EvolinkError) -> Text:
    return SUBMIT_ERROR_MESSAGES.get(type(error), GENERIC_SUBMIT_FAILURE)


def billing_note(job: Job) -> Text:
    """How a reserved job is billed: which part of the clip when it was cut, and the
    provider's clamp when it applies (§6: a clip under the model's minimum is billed as the
    minimum). A clip longer than the maximum is always cut, so that clamp never applies."""
    billed = job.billed_seconds or 0
    cut = job.source.cut
    if cut is not None:
        return N_(
            "editing {start}–{end} of your {length} clip, billed as {billed} s",
            start=format_clock(cut.start_s), end=format_clock(cut.start_s + cut.duration_s),
            length=format_clock(cut.source_duration_s), billed=billed,
        )
    if job.duration_s is not None and job.billed_seconds is not None and (
        whole_seconds_up(job.duration_s) < billed
    ):
        return N_("{clip} s clip, billed as {billed} s, this model's minimum",
                  clip=Number(number=job.duration_s), billed=billed)
    return N_("billed as {billed} s", billed=billed)


INTAKES_BUSY = N_(
    "The bot is checking many clips right now; try again in a minute. Nothing was charged."
)


def counted_seconds(job: Job) -> int:
    """What the job's billed seconds count against quotas (its model's price weighting):
    what the ledger reserved for it, and what a refund gives back."""
    return spec_for(job.model).quota_seconds(job.billed_seconds or 0)


def price_note(job: Job) -> Text:
    """The chosen model, the credits this edit costs and, where the model's price makes them
    differ from the billed seconds, what it counts against the member's quota."""
    credits = Number.as_written(job.credits or 0)
    counted = counted_seconds(job)
    if counted != (job.billed_seconds or 0):
        return N_("{model}: {credits} credits, counted as {counted} s of your quota.",
                  model=job.model, credits=credits, counted=counted)
    return N_("{model}: {credits} credits.", model=job.model, credits=credits)


def quota_rule(specs: tuple[ModelSpec, ...]) -> Text:
    """How clips are billed and quotas stay fair across prices (ModelSpec.quota_seconds),
    for /quota; the README and the moderator guide state the same rule."""
    ranges = (specs[0].duration_range_text if len(specs) == 1
              else ", ".join(f"{spec.name} {spec.duration_range_text}" for spec in specs))
    rule = N_("A clip is billed by its length, rounded up: {ranges} per edit.", ranges=ranges)
    reference = MODEL_SPECS[QUOTA_REFERENCE_MODEL]
    weights = [
        N_("a {model} second counts {price}/{reference_price} of one", model=spec.name,
           price=Number.as_written(spec.credits_per_second),
           reference_price=Number.as_written(reference.credits_per_second))
        for spec in specs if spec.credits_per_second != reference.credits_per_second
    ]
    if not weights:
        return rule
    listed = weights[0]
    for weight in weights[1:]:
        listed = N_("{earlier}, {later}", earlier=listed, later=weight)
    return N_("{rule} Quotas count {reference} seconds: {weights} (their prices), rounded up "
              "per edit.", rule=rule, reference=reference.name, weights=listed)


def attempt_limit_reached(limit: int, window_s: int) -> Text:
    """Why a member whose attempts keep being refused must wait (the time is added apart)."""
    return N_(
        "You have had {limit} edits refused in the last {window}, so new ones wait for a "
        "while. Check that the clip and images meet the rules in the refusals you got before "
        "trying again. Nothing was charged.",
        limit=limit, window=Span(seconds=window_s),
    )
