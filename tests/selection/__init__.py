"""Tests of quasispecies.selection."""
