"""The test suite; subfolders mirror the packages of quasispecies."""
