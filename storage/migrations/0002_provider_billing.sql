-- The provider's own billing figures per job, kept beside ours (issue 11, item 7):
-- usage.credits_reserved and task_info.video_duration from its create and query answers.
-- NULL until the provider reports them (it may not echo usage on queries).
ALTER TABLE jobs ADD COLUMN provider_credits REAL;
ALTER TABLE jobs ADD COLUMN provider_video_duration REAL;
