"""Test helpers: real server processes, tiny models and folders the tests build, shared fixtures."""
