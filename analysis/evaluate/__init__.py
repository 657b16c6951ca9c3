"""Claims files and verdicts: parsing, judging, evaluating every claim."""
