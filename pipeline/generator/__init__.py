"""A deterministic generator of realistic scenarios of any size."""
