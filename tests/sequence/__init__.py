"""Tests of quasispecies.sequence."""
