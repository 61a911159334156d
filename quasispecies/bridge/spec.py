"""One way to name a model: ``load_lm(spec)`` and the command line's ``--lm SPEC``.

=================================  ===========================================================
spec                               model
=================================  ===========================================================
``embedded`` (default)             the embedded SmolLM2-135M-Instruct (:func:`default_lm`)
``gguf:PATH``                      a GGUF file, run in process by the JAX backend
``hf:PATH``                        a local Hugging Face directory (:class:`TransformersLM`)
``http://HOST:PORT/v1[#MODEL]``    an OpenAI-compatible server (:class:`RemoteLM`); ``MODEL``
                                   is the served model name (vLLM needs it); ``https://`` too
=================================  ===========================================================
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SPEC_FORMS", "load_lm", "parse_spec"]

#: The accepted forms, as error messages and ``--help`` list them.
SPEC_FORMS = "embedded | gguf:PATH | hf:PATH | http://HOST:PORT/v1[#MODEL]"


def parse_spec(spec, name: str = "spec") -> tuple[str, str | None, str | None]:
    """``(kind, target, model)``: kind ``embedded``/``gguf``/``hf``/``remote``.

    Raises ``ValueError`` naming ``name`` and listing :data:`SPEC_FORMS` for anything else.
    """

    def bad(why: str) -> ValueError:
        return ValueError(f"{name}: {why}; expected one of: {SPEC_FORMS}")

    if not isinstance(spec, str):
        raise bad(f"expected a string, got {type(spec).__name__}")
    s = spec.strip()
    if s == "embedded":
        return "embedded", None, None
    if s.startswith(("http://", "https://")):
        url, _, model = s.partition("#")
        host = url.split("://", 1)[1].split("/", 1)[0]
        if not host:
            raise bad(f"{spec!r} names no host")
        if "#" in s and not model:
            raise bad(f"{spec!r} has an empty model name after '#'")
        return "remote", url, model or None
    for kind in ("gguf", "hf"):
        if s.startswith(kind + ":"):
            path = s[len(kind) + 1 :]
            if not path:
                raise bad(f"{spec!r} names no path")
            p = Path(path).expanduser()
            if kind == "gguf" and not p.is_file():
                raise bad(f"{spec!r}: no such file {str(p)!r}")
            if kind == "hf" and not p.is_dir():
                raise bad(f"{spec!r}: no such directory {str(p)!r}")
            return kind, str(p), None
    raise bad(f"unknown model spec {spec!r}")


def load_lm(spec: str = "embedded", name: str = "spec", **remote_options):
    """The model named by ``spec`` (module docstring), as a
    :class:`~quasispecies.bridge.protocol.LM`.

    ``remote_options`` (``retries``, ``batch_size``, ``timeout``, ``api_key``, ...) go to
    :class:`~quasispecies.bridge.remote.RemoteLM` and are refused for a local spec.
    ``name`` is the argument named in errors (the CLI passes ``--lm``).
    """
    kind, target, model = parse_spec(spec, name)
    if remote_options and kind != "remote":
        raise ValueError(
            f"{name}: options {sorted(remote_options)} apply to a server URL only, not {spec!r}"
        )
    if kind == "embedded":
        from quasispecies.bridge.lm import default_lm

        return default_lm()
    if kind == "gguf":
        from quasispecies.bridge.gguf_model import GGUFModel

        return GGUFModel(target)
    if kind == "hf":
        from quasispecies.bridge.hf import TransformersLM

        return TransformersLM(target)
    from quasispecies.bridge.remote import RemoteLM

    assert target is not None
    return RemoteLM(target, model, **remote_options)
