-- Which host recorded each event ([log] host_id), so several hosts can share one database.
ALTER TABLE events ADD COLUMN host TEXT;
