r"""Token trees that scale to a server: batched next-token queries, a request budget and a
persistent on-disk cache ``prefix -> top-k``.

:func:`quasispecies.bridge.token_tree` asks for the top-``k`` next tokens of every internal
node, level by level. Against a remote model each query is a request, so a tree of
:math:`\sum_{d<H} k^d` internal nodes costs that many queries. A :class:`TreeCache` keeps
every answer on disk (a folder of chunk files, each written atomically when its batch
returns), keyed by the token-id prefix, so

* an interrupted build resumes: the next build with the same cache asks only for the
  prefixes that are not in it yet, and produces the identical tree;
* a rebuild costs no query at all;
* a deeper or wider tree reuses every prefix already asked (an entry for ``n`` tokens
  serves any ``k <= n``: the list is best first).

A :class:`CachedExpander` wraps the tree builder's per-level expansion (token-id prefixes
for a backend with a tokenizer, text prefixes for a remote model): it serves cached
prefixes, sends the rest in chunks of ``batch_size`` prefixes, counts them against
``max_requests`` and, when the budget runs out, raises :class:`RequestBudgetExceeded` (the
tree is not returned half-built; the cache keeps every finished chunk). A "request" here
is one next-token query (one prefix): the unit every backend shares; a
:class:`~quasispecies.bridge.remote.RemoteLM` sends ``ceil(n / lm.batch_size)`` HTTP
requests for ``n`` of them.

Keys are :func:`prefix_key`: the full token-id prefix (``ids:1,2,3``) or, for a model
without a local tokenizer, the full prefix text (``text:...``, what the server is sent).
The cache is tied to one model: its ``meta.json`` names the model (``lm.name`` unless the
caller gives ``model_id``); opening it for another model is refused.
Log-probs are stored as JSON floats (float64 ``repr`` round-trips exactly), so a tree built
from the cache is bit-identical to the one built from the model.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from quasispecies.model.files import read_json, write_json

__all__ = ["CachedExpander", "RequestBudgetExceeded", "TreeCache", "prefix_key"]

_FORMAT = "quasispecies-token-tree-cache/1"
_CHUNK = re.compile(r"^chunk-(\d{6,})\.json$")


class RequestBudgetExceeded(RuntimeError):
    """Raised when a tree build would need more next-token queries than ``max_requests``.

    ``done`` queries were made (and cached) in this build; ``needed`` more were left.
    """

    def __init__(self, message: str, done: int, needed: int) -> None:
        super().__init__(message)
        self.done = done
        self.needed = needed


def prefix_key(prefix) -> str:
    """The cache key of a prefix: ``ids:1,2,3`` for token ids, ``text:...`` for a text."""
    if isinstance(prefix, str):
        return "text:" + prefix
    return "ids:" + ",".join(str(int(i)) for i in prefix)


class TreeCache:
    """A persistent ``prefix key -> (top-n tokens, top-n log-probs)`` store in ``path``.

    Parameters
    ----------
    path : folder (created if missing)
    model_id : str
        Identity of the model the answers come from (stored in ``meta.json``; a cache made
        for another model is refused with ``ValueError``).
    """

    def __init__(self, path, model_id: str) -> None:
        if not isinstance(model_id, str) or not model_id:
            raise ValueError(f"model_id: expected a non-empty string, got {model_id!r}")
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"cache: {self.path} exists and is not a folder")
        self.model_id = model_id
        self._entries: dict[str, tuple[list, np.ndarray]] = {}
        self._next_chunk = 0
        meta_path = self.path / "meta.json"
        if meta_path.exists():
            meta = read_json(meta_path)
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise ValueError(f"cache: {meta_path} is not a token-tree cache ({_FORMAT})")
            if meta.get("model") != model_id:
                raise ValueError(
                    f"cache: {self.path} holds answers of model {meta.get('model')!r}, "
                    f"not {model_id!r}; use another folder"
                )
            self._load()
        else:
            write_json(meta_path, {"format": _FORMAT, "model": model_id})

    @classmethod
    def for_model(cls, path, lm, model_id: str | None = None) -> TreeCache:
        """The cache in ``path`` for ``lm`` (identity ``model_id``, else ``lm.name``)."""
        return cls(path, model_id or str(getattr(lm, "name", "") or type(lm).__name__))

    def _load(self) -> None:
        chunks = sorted(
            (int(m.group(1)), p)
            for p in self.path.iterdir()
            if (m := _CHUNK.match(p.name)) is not None
        )
        for num, p in chunks:
            doc = read_json(p)
            try:
                for key, toks, lps in doc["entries"]:
                    self._put(str(key), toks, lps)
            except (KeyError, TypeError, ValueError) as err:
                raise ValueError(f"cache: {p} is not a cache chunk ({err})") from None
            self._next_chunk = max(self._next_chunk, num + 1)

    def _put(self, key: str, toks, lps) -> None:
        lps_a = np.asarray(lps, dtype=np.float64)
        toks = list(toks)
        if lps_a.ndim != 1 or len(toks) != lps_a.size or not toks:
            raise ValueError("an entry needs equal-length, non-empty tokens and log-probs")
        old = self._entries.get(key)
        if old is None or len(old[0]) < len(toks):
            self._entries[key] = (toks, lps_a)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, n: int) -> tuple[list, np.ndarray] | None:
        """The cached top-``n`` of ``key`` (tokens, log-probs), or ``None`` if fewer known."""
        hit = self._entries.get(key)
        if hit is None or len(hit[0]) < n:
            return None
        return hit[0][:n], hit[1][:n]

    def add(self, keys, toks, lps) -> None:
        """Store one chunk of answers in a new chunk file, written atomically: an
        interruption loses at most the chunk in flight."""
        rows = []
        for key, t, v in zip(keys, toks, lps, strict=True):
            t = [x if isinstance(x, str) else int(x) for x in t]
            self._put(key, t, v)
            rows.append([key, t, [float(x) for x in v]])
        if rows:
            write_json(self.path / f"chunk-{self._next_chunk:06d}.json", {"entries": rows})
            self._next_chunk += 1


class CachedExpander:
    """The tree builder's expansion of one level, through a cache and a budget.

    Parameters
    ----------
    expand : the builder's expander: ``expand(paths, n) -> (tokens (N lists), lps (N, n))``,
        with ``prompt_ids`` (token ids) or ``prompt`` and ``text(path)`` (text prefixes)
    cache : TreeCache or None
    max_requests : int >= 0 or None
        Most next-token queries (uncached prefixes sent to the model) this build may make.
    batch_size : int >= 1 or None
        Prefixes per call of ``expand`` (each chunk is cached when it returns); ``None``:
        a whole level per call.
    bar : a tqdm bar (or None), advanced by one per node answered.

    ``queries`` counts the prefixes sent to the model, ``hits`` those served by the cache,
    ``calls`` the calls of ``expand``. Other attributes are ``expand``'s.
    """

    def __init__(
        self,
        expand,
        cache: TreeCache | None = None,
        max_requests: int | None = None,
        batch_size: int | None = None,
        bar=None,
    ) -> None:
        if max_requests is not None and (
            isinstance(max_requests, bool)
            or not isinstance(max_requests, int | np.integer)
            or max_requests < 0
        ):
            raise ValueError(f"max_requests: expected an integer >= 0, got {max_requests!r}")
        if batch_size is not None and (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, int | np.integer)
            or batch_size < 1
        ):
            raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
        self.expand = expand
        self.cache = cache
        self.max_requests = None if max_requests is None else int(max_requests)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.bar = bar
        self.queries = 0
        self.hits = 0
        self.calls = 0

    def __getattr__(self, name: str):
        return getattr(self.__dict__["expand"], name)

    def key(self, path) -> str:
        """:func:`prefix_key` of the full prefix the model is asked about."""
        ids = getattr(self.expand, "prompt_ids", None)
        if ids:
            return prefix_key([*ids, *path])
        return prefix_key(self.expand.prompt + (self.expand.text(path) if path else ""))

    def __call__(self, paths, n: int) -> tuple[list[list], np.ndarray]:
        """Top-``n`` tokens (N lists) and log-probs (N, n) float64 of each path's prefix."""
        N = len(paths)
        toks: list[list] = [[] for _ in range(N)]
        lps = np.zeros((N, n), dtype=np.float64)
        keys = [self.key(p) for p in paths] if self.cache is not None else [""] * N
        todo: list[int] = []
        for i in range(N):
            hit = None if self.cache is None else self.cache.get(keys[i], n)
            if hit is None:
                todo.append(i)
            else:
                toks[i], lps[i] = list(hit[0]), hit[1]
                self.hits += 1
        if self.bar is not None and N > len(todo):
            self.bar.update(N - len(todo))
        step = self.batch_size or max(len(todo), 1)
        pos = 0
        while pos < len(todo):
            chunk = todo[pos : pos + step]
            if self.max_requests is not None:
                left = self.max_requests - self.queries
                if left <= 0:
                    raise self._over_budget(len(todo) - pos)
                chunk = chunk[:left]
            got_t, got_l = self.expand([paths[i] for i in chunk], n)
            got_l = np.asarray(got_l, dtype=np.float64)
            self.calls += 1
            self.queries += len(chunk)
            for j, i in enumerate(chunk):
                toks[i], lps[i] = list(got_t[j]), got_l[j]
            if self.cache is not None:
                self.cache.add([keys[i] for i in chunk], got_t, got_l)
            if self.bar is not None:
                self.bar.update(len(chunk))
            pos += len(chunk)
        return toks, lps

    def _over_budget(self, needed: int) -> RequestBudgetExceeded:
        kept = (
            f"the {len(self.cache)} answers so far are kept in {self.cache.path}"
            if self.cache is not None
            else "nothing is kept (pass a cache to resume)"
        )
        return RequestBudgetExceeded(
            f"max_requests: the budget of {self.max_requests} next-token queries is spent "
            f"and {needed} more are needed at this level alone; {kept}; rerun with a "
            "larger --max-requests (and the same cache) to resume",
            done=self.queries,
            needed=needed,
        )
