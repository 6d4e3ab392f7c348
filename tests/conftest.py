"""Suite-wide pytest configuration. Keep this small: fixtures live in plugin modules."""

pytest_plugins = ["tests.emulator_fixtures"]
