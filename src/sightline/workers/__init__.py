"""Background work: the writer that stores events, rollups, retention, archiving."""
