"""Step 2–3 of a submit: download each input into the job's scratch folder and check it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from bot.evolink.spec import ModelSpec
from bot.i18n import N_
from bot.media.cut import cut_clip
from bot.media.errors import FileNames, MediaRejected, format_limit_mb, megabytes
from bot.media.fetch import FetchedFile, Fetcher, FetchLimits, fetch_to_file
from bot.media.info import VideoInfo
from bot.media.precheck import SLACK_S
from bot.media.probe import probe_image, probe_video
from bot.media.prober import Prober
from bot.media.sniff import sniff_file_sync
from bot.media.store import MediaStore
from bot.media.urlpolicy import FetchPolicies, UrlPolicy
from bot.media.validation import (
    ClipRules,
    CutPlan,
    ImageRules,
    check_image,
    check_image_count,
    check_image_kind,
    check_start,
    check_video,
    check_video_kind,
    plan_cut,
)
from storage.media import MediaRepository
from storage.models import ClipCut, JobSource, MediaRole, ValidatedInput


@dataclass(frozen=True)
class IntakeConfig:
    """How inputs are fetched. What they must be is the job's model's (:func:`rules_for`)."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 300.0  # the whole download (FetchLimits.total_timeout)
    min_rate: int = 0  # bytes a second past the first seconds (FetchLimits.min_rate)
    # Where member links and Discord attachments may be fetched from (every redirect too).
    policies: FetchPolicies = field(default_factory=FetchPolicies)


@dataclass(frozen=True)
class InputRules:
    clip: ClipRules
    images: ImageRules


@cache
def rules_for(spec: ModelSpec) -> InputRules:
    """The intake rules of one model: each job is checked with its own model's."""
    return InputRules(clip=ClipRules.for_model(spec), images=ImageRules.for_model(spec))


@dataclass(frozen=True)
class KeptFile:
    """An input the bot kept itself (by its media token), copied instead of downloaded."""

    token: str


@dataclass(frozen=True)
class CheckedInputs:
    video: VideoInfo  # the clip as sent: the cut part when it was cut
    validated: list[ValidatedInput]
    cut: ClipCut | None = None


def precheck_request(
    video_size: int | None, image_sizes: list[int | None], start_s: float, spec: ModelSpec
) -> None:
    """Refuse what Discord already told us is too big or wrong, before downloading a byte."""
    rules = rules_for(spec)
    check_start(start_s, rules.clip)
    check_image_count(len(image_sizes), rules.images)
    if video_size is not None and video_size > rules.clip.max_bytes:
        raise MediaRejected(
            N_("The clip is {size} MB; the limit is {limit}.",
               size=megabytes(video_size, round_up=True),
               limit=format_limit_mb(rules.clip.max_bytes)),
            code="video_too_large",
        )
    for index, size in enumerate(image_sizes, start=1):
        if size is not None and size > rules.images.max_bytes:
            raise MediaRejected(
                N_("Reference image {index} is {size} MB; the limit is {limit}.", index=index,
                   size=megabytes(size, round_up=True),
                   limit=format_limit_mb(rules.images.max_bytes)),
                code="image_too_large",
            )


class Intake:
    def __init__(
        self,
        downloads: Fetcher,
        config: IntakeConfig,
        store: MediaStore,
        media: MediaRepository,
        clock: Callable[[], float],
        prober: Prober,
    ) -> None:
        # Member downloads have a pool of their own: they never hold up provider calls.
        self.downloads = downloads
        self.config = config
        self.store = store
        self.media = media
        self.clock = clock
        self.prober = prober

    async def gather(self, source: JobSource, scratch: Path, spec: ModelSpec) -> CheckedInputs:
        """Fetch and check every input against `spec`'s rules (the job's model); on refusal
        nothing is left in `scratch`."""
        rules = rules_for(spec)
        await self.downloads.files.run(scratch.mkdir, parents=True, exist_ok=True)
        try:
            video_input, video_info, cut = await self._video(source, scratch, rules.clip)
            # A new edit names its images by URL; a Re-run by the copies the bot kept.
            references: list[str | KeptFile] = [
                *source.image_urls, *(KeptFile(token=t) for t in source.image_media_tokens)
            ]
            images = [
                await self._image(reference, index, scratch, rules.images)
                for index, reference in enumerate(references, start=1)
            ]
        except BaseException:
            await self.discard_scratch(scratch)
            raise
        return CheckedInputs(video=video_info, validated=[video_input, *images], cut=cut)

    async def _fetch(
        self, url: str, dest: Path, max_bytes: int, policy: UrlPolicy, names: FileNames
    ) -> FetchedFile:
        limits = FetchLimits(
            max_bytes=max_bytes,
            connect_timeout=self.config.connect_timeout,
            read_timeout=self.config.read_timeout,
            total_timeout=self.config.total_timeout,
            min_rate=self.config.min_rate,
        )
        return await fetch_to_file(self.downloads, url, dest, limits, policy, names=names)

    async def _video(
        self, source: JobSource, scratch: Path, rules: ClipRules
    ) -> tuple[ValidatedInput, VideoInfo, ClipCut | None]:
        policies = self.config.policies
        policy = policies.member_links if source.video_is_user_link else policies.attachments
        if source.video_media_token:
            fetched = await self._copy_archived(source.video_media_token, scratch / "video")
        else:
            fetched = await self._fetch(
                source.video_url, scratch / "video", rules.max_bytes, policy, FileNames.clip()
            )
        kind = await self.downloads.files.run(sniff_file_sync, fetched.path)
        check_video_kind(kind)
        info = await probe_video(self.prober, fetched.path, rules, start_s=source.start_s)
        check_video(info, rules)
        plan = plan_cut(info.duration_s, source.start_s, rules)
        size, sha256, cut = fetched.size, fetched.sha256, None
        if plan is not None:
            info, cut, size, sha256 = await self._cut(fetched.path, info, plan, rules)
        validated = ValidatedInput(
            role=MediaRole.INPUT_VIDEO, position=0, scratch_name="video",
            filename=f"input{kind.extension}", content_type=kind.mime_type,
            size_bytes=size, sha256=sha256,
        )
        return validated, info, cut

    async def _cut(
        self, path: Path, info: VideoInfo, plan: CutPlan, rules: ClipRules
    ) -> tuple[VideoInfo, ClipCut, int, str]:
        """Replace the clip at `path` by `plan`'s part (what is rehosted, archived, checked
        by the provider and billed); returns its facts, the cut, its size and sha256."""
        cut_path = path.with_name(f"{path.name}-cut")
        cut = await cut_clip(self.prober, path, cut_path, plan, rules)
        await self.downloads.files.run(os.replace, cut_path, path)
        cut_info = await probe_video(self.prober, path, rules)
        check_video(cut_info, rules)
        source_s = info.duration_s
        if cut_info.duration_s < plan.length_s - SLACK_S:
            source_s = cut.start_s + cut_info.duration_s  # it ends sooner than its header said
        clip_cut = ClipCut(
            source_duration_s=source_s, start_s=cut.start_s, duration_s=cut_info.duration_s
        )
        return cut_info, clip_cut, cut.size, cut.sha256

    async def _copy_archived(self, token: str, dest: Path) -> FetchedFile:
        media = await self.media.kept_by_token(token, now=self.clock())
        if media is None:
            raise MediaRejected(
                N_("That file is no longer kept by the bot; attach it again to edit it."),
                code="archived_video_gone",
            )
        await self.store.copy_to(media, dest)
        return FetchedFile(path=dest, size=media.size_bytes, sha256=media.sha256)

    async def _image(
        self, reference: str | KeptFile, index: int, scratch: Path, rules: ImageRules
    ) -> ValidatedInput:
        name = f"image-{index}"
        if isinstance(reference, KeptFile):
            fetched = await self._copy_archived(reference.token, scratch / name)
        else:
            fetched = await self._fetch(
                reference, scratch / name, rules.max_bytes, self.config.policies.attachments,
                FileNames.image(index),
            )
        kind = await self.downloads.files.run(sniff_file_sync, fetched.path)
        check_image_kind(kind, index)
        info = await probe_image(self.prober, fetched.path, index=index)
        check_image(info, rules, index)
        return ValidatedInput(
            role=MediaRole.INPUT_IMAGE, position=index, scratch_name=name,
            filename=f"reference-{index}{kind.extension}", content_type=kind.mime_type,
            size_bytes=fetched.size, sha256=fetched.sha256,
        )

    async def discard_scratch(self, scratch: Path) -> None:
        await self.downloads.files.run(shutil.rmtree, scratch, True)
