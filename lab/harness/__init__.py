"""Start and stop real services on loopback, for pytest fixtures and the demo lab.

Every service binds 127.0.0.1 on a free port, keeps its data under a directory
the caller owns, and is stopped by the PID the harness recorded when it started
it. Nothing here talks to any address but loopback.
"""
