"""Hugging Face ``transformers`` backend (the ``[hf]`` extra: ``pip install quasispecies[hf]``).

:class:`TransformersLM` wraps a causal LM from a *local* directory (never the hub:
``local_files_only=True``) or an already-built model object, and offers the same
front end as :class:`~quasispecies.bridge.gguf_model.GGUFModel` (``score``,
``token_logprobs``, ``next_token_logprobs``, token trees).

A GGUF file can be loaded through transformers too (``gguf_file=``; transformers
dequantises it to float, which needs ``accelerate`` and the ``gguf`` package); the
tests use that to check the JAX forward pass against PyTorch's.

torch and transformers are imported only when this class is instantiated.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from quasispecies.bridge.lm import LanguageModel, TokenIds
from quasispecies.semiring import host

__all__ = ["TransformersLM"]


def _import_hf():
    try:
        import torch
        import transformers
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "TransformersLM needs the [hf] extra: pip install 'quasispecies[hf]' "
            f"(torch and transformers); import failed: {err}"
        ) from None
    return torch, transformers


class TransformersLM(LanguageModel):
    """A ``transformers`` causal LM as a :class:`LanguageModel`.

    Parameters
    ----------
    model_or_path : str, PathLike or a ``PreTrainedModel``
        A local directory saved with ``save_pretrained`` (or holding ``gguf_file``),
        or a model object.
    tokenizer : a ``PreTrainedTokenizer(Fast)``, a ``tokenizers.Tokenizer``, or None
        Defaults to the tokenizer saved next to the model. A ``tokenizers.Tokenizer``
        (e.g. ``GGUFModel(...).tokenizer``) makes both backends see the same ids.
    gguf_file : str, optional
        File name of a GGUF inside ``model_or_path``.
    dtype : str
        ``"float32"`` (default) or ``"float64"``.
    max_tokens_per_batch : int
        Bound on ``rows * padded length`` per forward call.
    """

    def __init__(
        self,
        model_or_path,
        *,
        tokenizer=None,
        gguf_file: str | None = None,
        dtype: str = "float32",
        max_tokens_per_batch: int = 512,
    ):
        torch, transformers = _import_hf()
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
        self._torch = torch
        self._dtype = getattr(torch, dtype)
        if isinstance(model_or_path, str | os.PathLike):
            path = Path(model_or_path)
            if not path.is_dir():
                raise ValueError(
                    f"model_or_path: {str(path)!r} is not a local directory "
                    "(TransformersLM never downloads from a hub)"
                )
            if gguf_file is not None and not (path / gguf_file).is_file():
                raise ValueError(f"gguf_file: {gguf_file!r} not found in {str(path)!r}")
            kw: dict[str, object] = {"local_files_only": True}
            if gguf_file is not None:
                kw["gguf_file"] = gguf_file
            try:
                model = transformers.AutoModelForCausalLM.from_pretrained(
                    path, dtype=self._dtype, **kw
                )
            except (OSError, ValueError) as err:
                raise ValueError(
                    f"model_or_path: cannot load a causal LM from {str(path)!r}: {err}"
                ) from None
            if tokenizer is None:
                try:
                    tokenizer = transformers.AutoTokenizer.from_pretrained(path, **kw)
                except (OSError, ValueError) as err:
                    raise ValueError(
                        f"tokenizer: none saved in {str(path)!r} ({err}); pass tokenizer="
                    ) from None
            self.name = path.name if gguf_file is None else gguf_file
        elif isinstance(model_or_path, transformers.PreTrainedModel):
            model = model_or_path.to(self._dtype)
            if tokenizer is None:
                raise ValueError("tokenizer: required when a model object is given")
            self.name = type(model).__name__
        else:
            raise ValueError(
                f"model_or_path: expected a directory or a PreTrainedModel, got {type(model_or_path).__name__}"
            )
        model.eval()
        self.model = model
        self.tokenizer = tokenizer
        self.vocab_size = int(model.get_output_embeddings().weight.shape[0])
        self.max_tokens_per_batch = int(max_tokens_per_batch)

    def __repr__(self) -> str:
        return f"TransformersLM({self.name!r}, vocab={self.vocab_size})"

    # ------------------------------------------------------------- tokenizer
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added), by the wrapped tokenizer."""
        if not isinstance(text, str):
            raise ValueError(f"text: expected a string, got {type(text).__name__}")
        from tokenizers import Tokenizer

        if isinstance(self.tokenizer, Tokenizer):
            return list(self.tokenizer.encode(text, add_special_tokens=False).ids)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: TokenIds) -> str:
        """Text of ``ids`` (special tokens kept), by the wrapped tokenizer."""
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)

    # --------------------------------------------------------------- forward
    def _forward(self, seqs: list[list[int]]):
        """Logits over the vocabulary at every position of a right-padded batch (B, T, V),
        in the model's dtype (normalised by the callers, row by row, on the host)."""
        torch = self._torch
        T = max(len(s) for s in seqs)
        ids = torch.zeros((len(seqs), T), dtype=torch.long)
        mask = torch.zeros((len(seqs), T), dtype=torch.long)
        for b, s in enumerate(seqs):
            ids[b, : len(s)] = torch.tensor(s)
            mask[b, : len(s)] = 1
        with torch.no_grad():
            logits = self.model(input_ids=ids, attention_mask=mask).logits
            return logits.to(self._dtype)

    def _batches(self, seqs: list[list[int]]):
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        i = 0
        while i < len(order):
            T = len(seqs[order[i]])
            rows = max(1, self.max_tokens_per_batch // max(T, 1))
            group = order[i : i + rows]
            i += len(group)
            yield group

    def _next_logprobs(self, prefixes: list[list[int]]) -> np.ndarray:
        """:math:`\\log p(\\cdot \\mid x)` (N, V) float64: the last real position's logits,
        log-normalised in float64 (``semiring.host.log_normalise``)."""
        out = np.empty((len(prefixes), self.vocab_size), dtype=np.float64)
        for group in self._batches(prefixes):
            logits = self._forward([prefixes[j] for j in group])
            for b, j in enumerate(group):
                out[j] = host.log_normalise(logits[b, len(prefixes[j]) - 1].double().numpy())
        return out

    def _sequence_logprobs(self, seqs, top_k: int = 0):
        """Teacher-forced ``log p(x_{t+1} | x_{<=t})`` of each sequence (float64), and the
        ``top_k`` best log-probs and ids per position (``torch.topk`` order)."""
        torch = self._torch
        results: list = [None] * len(seqs)
        for s in seqs:
            if len(s) < 2:
                raise ValueError("text: needs at least two tokens to have a scored token")
        for group in self._batches(seqs):
            logits = self._forward([seqs[j] for j in group])
            for b, j in enumerate(group):
                n = len(seqs[j])
                lp_pos = host.log_normalise(logits[b, : n - 1].double().numpy(), axis=-1)
                target = np.asarray(seqs[j][1:])
                lp = np.take_along_axis(lp_pos, target[:, None], axis=-1)[:, 0]
                vals = idx = None
                if top_k:
                    v, ix = torch.topk(torch.from_numpy(lp_pos), top_k, dim=-1)
                    vals, idx = v.numpy(), ix.numpy()
                results[j] = (lp, vals, idx)
        return results
