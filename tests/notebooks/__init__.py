"""Tests of quasispecies.notebooks."""
