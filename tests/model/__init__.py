"""Tests of quasispecies.model."""
