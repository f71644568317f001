#!/usr/bin/env python3
"""Converts docs/openapi.yaml to JSON and writes a C++ source that embeds it.

Usage: embed_openapi.py <openapi.yaml> <output.cc>
Uses python3-yaml (Debian) at build time only; the daemon itself has no YAML dependency.
"""
import json
import sys

import yaml


def main() -> int:
    source, output = sys.argv[1], sys.argv[2]
    with open(source, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    text = json.dumps(spec, separators=(",", ":"), ensure_ascii=False)
    delimiter = "dops_spec"
    assert f"){delimiter}\"" not in text
    # Split into chunks: some compilers limit the length of one string literal.
    chunks = [text[i:i + 16000] for i in range(0, len(text), 16000)]
    body = "\n".join(f'    R"{delimiter}({c}){delimiter}"' for c in chunks)
    with open(output, "w", encoding="utf-8") as f:
        f.write("// Generated from docs/openapi.yaml by scripts/embed_openapi.py. Do not edit.\n")
        f.write("#include <string_view>\n\nnamespace deviceops::api {\n\n")
        f.write("std::string_view openApiSpecJson() {\n  static constexpr char kSpec[] =\n")
        f.write(body)
        f.write(";\n  return {kSpec, sizeof(kSpec) - 1};\n}\n\n}  // namespace deviceops::api\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
