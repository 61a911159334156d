"""Tests of quasispecies.paths."""
