"""What tests share beyond fixtures: builders of real trails (importable as tests.support)."""
