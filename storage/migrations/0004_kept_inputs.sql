-- Inputs are kept (not served) after their public window so that "Re-run" works once
-- Discord's signed attachment links have expired (issue 13): `kept_until` is when the file
-- may be deleted; `expires_at` stays the end of its public URL.
ALTER TABLE media_objects ADD COLUMN kept_until REAL;
