"""Search algorithms, validation strategies and testers. Each module registers itself by name."""
