"""The local lab estate: real services on 127.0.0.1 for tests and ``make demo``."""
