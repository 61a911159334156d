"""Independent brute-force references every kernel is tested against.

* :mod:`.dense` -- dense ``S x S`` matrices, explicit NumPy path sums, SciPy eigensolvers;
* :mod:`.paths` -- explicit path enumeration with ``itertools`` (path sums, top-k,
  entropy, selected policy);
* :mod:`.sequence` -- dense Eigen matrices ``Q``, ``W = diag(f) Q`` and their Perron pairs;
* :mod:`.selection` -- tilts, best-of-n by enumerating every ``n``-tuple of draws
  (``itertools``) and by simulation, the filtering recurrence, token-tree products;
* :mod:`.bridge` -- token trees by explicit enumeration: token-level sampling over all
  ``k^H`` paths, ``p(y)^(1/T) / Z``, beam search on the model's full vocabulary.

Nothing here imports a kernel of ``quasispecies``: a reference that shared code with
what it checks could not catch that code's bugs.
"""
