"""Tests of quasispecies.semiring."""
