"""Regenerate the Python stubs of the wire protocol: `python -m neurender.proto.generate`.

The .proto files live in proto/neurender/v1/ and import each other as "neurender/v1/..." (so descriptors and
reflection show clean names). protoc writes `from neurender.v1 import ...`; the installed package puts the
modules at `neurender.proto.neurender.v1`, so those import lines are rewritten to that path.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
PROTO_DIR = PROTO_ROOT / "neurender" / "v1"
PACKAGE = "neurender.proto.neurender.v1"


def generate(out_dir: Path) -> list[Path]:
    """Compile every .proto into `out_dir` (flat) and return the generated files."""
    from grpc_tools import protoc

    protos = sorted(PROTO_DIR.glob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{Path(protoc.__file__).parent / '_proto'}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *[str(p) for p in protos],
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {', '.join(p.name for p in protos)}")
        generated = sorted((Path(tmp) / "neurender" / "v1").glob("*_pb2*"))
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for path in generated:
            target = out_dir / path.name
            text = path.read_text().replace("from neurender.v1 import", f"from {PACKAGE} import")
            target.write_text(text)
            written.append(target)
    return written


def stale_stubs() -> list[str]:
    """Names of committed stubs that differ from what the .proto files generate now."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        return [
            p.name
            for p in fresh
            if not (PROTO_DIR / p.name).exists() or not filecmp.cmp(p, PROTO_DIR / p.name, shallow=False)
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Regenerate the committed gRPC/protobuf stubs from proto/neurender/v1/*.proto."
    )
    parser.add_argument("--check", action="store_true", help="only report stale stubs; exit 1 if any")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_stubs()
        for name in stale:
            print(f"stale: {name}")
        return 1 if stale else 0
    for path in generate(PROTO_DIR):
        print(f"wrote {path.relative_to(PROTO_ROOT.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
