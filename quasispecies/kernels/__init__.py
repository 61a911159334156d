"""Kernels: the replication operator in its storage layouts and the linear-domain fast paths.

* :mod:`.operators` -- one forward step ``n -> n W_T`` in the log semiring (dense / segment);
* :mod:`.pull` -- the pull (sliced-ELL, by destination) layout for large sparse MDPs;
* :mod:`.krylov`, :mod:`.lanczos` -- Perron solvers on those operators;
* :mod:`.kronecker`, :mod:`.hamming` -- Eigen's sequence-space operators;
* :mod:`.maxplus` -- max-plus spectral theory (Karp, Howard) on the support graph;
* :mod:`.sharding` -- the pull kernels over a device mesh.

Import the module you need (``from quasispecies.kernels import pull``); nothing is
re-exported here.
"""
