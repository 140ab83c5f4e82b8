"""Where a client command renders: through --server, or through a private server it starts on 127.0.0.1.

Every command that streams frames (render-scene, render-video, dance) takes its server and model the same way
(neurender.common.args.add_server_options / add_model_option): without --server, --model names a bundle folder or
a bundle shipped in neurender/models, which a private server serves for the command's lifetime.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from neurender.common.errors import UserError

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = "demo"  # what render-scene and render-video use without --model or --server


def local_bundle(model: str) -> Path | None:
    """The bundle folder `model` names: a folder holding model.json, or a name in MODELS_DIR; None if neither."""
    for path in (Path(model), MODELS_DIR / model):
        if (path / "model.json").is_file():
            return path
    return None


def require_local_bundle(model: str) -> Path:
    path = local_bundle(model)
    if path is None:
        known = (
            sorted(p.name for p in MODELS_DIR.iterdir() if (p / "model.json").is_file()) if MODELS_DIR.is_dir() else []
        )
        raise UserError(
            f"model {model!r}: not a bundle folder (with model.json), and {MODELS_DIR} has no such model "
            f"(it has: {', '.join(known) or 'none'}); or render through a running server with --server "
            "(start one with `neurender serve --models DIR`)"
        )
    return path


@contextlib.contextmanager
def connect(
    server: str | None, model: str | None, token: str | None = None, root_certificates: bytes | None = None
) -> Iterator[tuple[object, str]]:
    """(RenderClient, served model name) for --server, or for a private local server with the --model bundle."""
    from neurender.engine_plugin.sdk.client import RenderClient
    from neurender.engine_plugin.sdk.common import ServerUnavailable
    from neurender.proto.bundle import BundleError, read_bundle
    from neurender.server.app import local_server
    from neurender.server.registry import RegistryError

    with contextlib.ExitStack() as stack:
        try:
            if server is not None:
                client = stack.enter_context(RenderClient(server, token=token, root_certificates=root_certificates))
                name = model if model is not None else _only_model(client, server)
            else:
                bundle = require_local_bundle(model or DEFAULT_MODEL)
                name = read_bundle(bundle).description.name
                address = stack.enter_context(local_server(bundle)).address
                client = stack.enter_context(RenderClient(address))
            yield client, name
        except (BundleError, RegistryError) as err:
            raise UserError(str(err)) from None
        except ServerUnavailable as err:
            if server is None:
                raise
            raise UserError(
                f"{server}: {err}; is a server running there? Start one with `neurender serve --models "
                "DIR`, or leave --server out to render with a private local server"
            ) from None


def _only_model(client, server: str) -> str:
    served = [m.name for m in client.list_models()]
    if len(served) != 1:
        raise UserError(f"{server} serves {len(served)} models ({', '.join(served)}); choose one with --model")
    return served[0]
