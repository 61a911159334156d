"""Tests of quasispecies.rl."""
