"""The committed gRPC/protobuf stubs are what the .proto files generate now (`python -m neurender.proto.generate`)."""

from __future__ import annotations

from neurender.proto.generate import stale_stubs


def test_committed_stubs_are_fresh():
    stale = stale_stubs()
    assert not stale, f"stale generated stubs {stale}: run `python -m neurender.proto.generate` and commit them"
