"""Imported before numpy and torch by the training and evaluation scripts: one OpenBLAS thread.

Debian's PyTorch calls the system BLAS (OpenBLAS, which keeps its own thread pool) from inside
its own OpenMP threads. With both pools on this machine's two cores, every training step was 2
to 4 times slower than with either alone (measured per stage in docs/DEMO.md). OpenBLAS reads
the variable once, when it loads; a value set by the caller wins."""
import os

os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
