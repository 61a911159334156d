"""Tests of quasispecies.bridge."""
