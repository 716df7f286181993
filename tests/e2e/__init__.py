"""End-to-end tests of the examples: real clients, a real browser, over loopback."""
