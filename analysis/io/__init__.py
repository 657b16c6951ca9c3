"""Files in and out: records, YAML, atomic writes, the posterior store, memos."""
