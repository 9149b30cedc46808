"""Shared test helpers (no tests here); test files import these, never each other.

* :mod:`.paths` — the repository root and where third-party and onnx light models live;
* :mod:`.onnxrt` — onnxruntime sessions, seeded feeds, output comparisons;
* :mod:`.models` — small hand-made models (validate/profile/report tests);
* :mod:`.planning` — conv/dense chains, analysis of a model, the old ``decide`` shortcut;
* :mod:`.oracle` — the two correctness oracles as reusable checks;
* :mod:`.fold` — the fold tests' graph builder and exactness check;
* :mod:`.sandwich` — ``Conv → op → Conv`` cases for every rule;
* :mod:`.robust` — valid, broken and unusual models for the robustness tests, and the CLI runner;
* :mod:`.html` — a minimal HTML reader for report pages.
"""
