-- Partial indexes: unfinished tasks are looked up by status (when the scheduler starts) and
-- finished ones by when they finished (the retention purge). Each index holds only the tasks
-- it finds, so storing a new task touches neither and finishing one moves one entry.
DROP INDEX scheduler_tasks_unfinished;
CREATE INDEX scheduler_tasks_unfinished ON scheduler_tasks (status)
    WHERE status IN ('queued', 'scheduled');
DROP INDEX scheduler_tasks_by_finish;
CREATE INDEX scheduler_tasks_by_finish ON scheduler_tasks (finished_at)
    WHERE finished_at IS NOT NULL;
