"""Tests of quasispecies.dynamics."""
