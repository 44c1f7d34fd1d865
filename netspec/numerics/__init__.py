"""Numerical kernels that know nothing of specs or the IR: arrays in, arrays out."""
