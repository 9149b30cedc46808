"""Shared test helpers (no tests here); test files import these, never each other.

* :mod:`.paths` — the repository root and where third-party and onnx light models live;
* :mod:`.onnxrt` — onnxruntime sessions, seeded feeds, output comparisons;
* :mod:`.models` — small hand-made models (validate/profile/report tests);
* :mod:`.planning` — conv/dense chains, analysis of a model, the old ``decide`` shortcut;
* :mod:`.oracle` — the two correctness oracles as reusable checks;
* :mod:`.fold` — the fold tests' graph builder and exactness check;
* :mod:`.sandwich` — ``Conv → op → Conv`` cases for every rule;
* :mod:`.robust` — valid, broken and unusual models for the robustness tests, and the CLI runner;
* :mod:`.html` — a minimal HTML reader for report pages;
* :mod:`.budget` — the planted chain and its calibration arrays for the budget search tests;
* :mod:`.repair` — small nets and feeds for the repair tests;
* :mod:`.transformer_cases`, :mod:`.transformer_reference`, :mod:`.minilm_reference` — transformer
  exports' numpy references, seeded feeds and checks;
* :mod:`.chromium` — headless Chromium lays out report pages; :mod:`.workers` — executor task functions;
* :mod:`.heads` — the transformer exports of the head tests; :mod:`.scoring` — small indexes and statistics; :mod:`.dynamic` — copies of models with dynamic dims.
"""
