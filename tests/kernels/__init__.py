"""Tests of quasispecies.kernels."""
