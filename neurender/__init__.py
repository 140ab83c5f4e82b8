"""neurender: neural rendering for game and VFX engines (stateful vid2vid over gRPC)."""

__version__ = "0.1.0"
