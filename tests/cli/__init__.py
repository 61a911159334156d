"""Tests of quasispecies.cli."""
