"""trialmeta.cli: the Typer command line (thin: parse, call the library, print)."""
