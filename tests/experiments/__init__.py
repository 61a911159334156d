"""Tests of quasispecies.experiments."""
