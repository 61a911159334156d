"""Kernels: the replication operator in its storage layouts and the linear-domain fast paths.

* :mod:`.operators` -- one forward step ``n -> n W_T`` in the log semiring (dense / segment)
  and the dense ``T log W_T`` matrix;
* :mod:`.pull_layout`, :mod:`.pull` -- the pull (sliced-ELL, by destination) layout for
  large sparse MDPs and its horizon runs (linear domain where exact, semiring otherwise);
* :mod:`.krylov`, :mod:`.lanczos` -- Perron solvers on those operators;
* :mod:`.kronecker`, :mod:`.symmetrised`, :mod:`.hamming` -- Eigen's sequence-space
  operators (site-by-site Kronecker products, the blocked symmetrised matvec, the exact
  Hamming-class lumping);
* :mod:`.maxplus`, :mod:`.maxplus_sparse` -- max-plus spectral theory (Karp, Howard) on
  the support graph, dense and on edge lists;
* :mod:`.sharding` -- the pull kernels over a device mesh.

Every log-domain reduction these kernels need comes from :mod:`quasispecies.semiring`.
Import the module you need (``from quasispecies.kernels import pull``); nothing is
re-exported here.
"""
