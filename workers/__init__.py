"""Teacher workers: claim tasks, call the teacher, verify, commit samples."""
