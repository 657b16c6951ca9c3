"""Claims as data: the types a claims file is read into (see ``spec``)."""
