// What each example in this folder prints, line by line: the package tests run every one of them
// as written, in headless Chromium (package.test.mjs) and in Node (node.test.mjs).
export const EXAMPLES = {
  "complete-lifecycle": ["Result: 42", "Messages processed: 1"],
  "multiple-kernels": ["Active kernels: aggregator, processor1, processor2", "Hypotenuse: 5", "Total messages: 3"],
  "pause-and-resume": ["State: deactivated", "Done: 1, 2, 3, 4, 5, 6"],
  "managed-kernel": ["Result: 42", "State: terminated"],
  // The same four with kernel handles (launch resolves with one).
  "complete-lifecycle-handle": ["Result: 42", "Messages processed: 1"],
  "multiple-kernels-handle": ["Active kernels: aggregator, processor1, processor2", "Hypotenuse: 5", "Total messages: 3"],
  "pause-and-resume-handle": ["State: deactivated", "Done: 1, 2, 3, 4, 5, 6"],
  "managed-kernel-handle": ["Result: 42", "State: terminated"],
  "user-kernel": [
    "Position: 0.25, 0.5, 0",
    "Position: 0, 0, 0",
    "Kept: 2, dropped: 1",
    "Dropped in telemetry: 1",
    "KernelCompileError at line 3, column 19",
  ],
};

/** Examples only a GPU backend runs: user-kernel is WGSL through and through (a WGSL handler that
 * drops, its compile error's line and column), with no JavaScript handler for the cpu backend. */
export const GPU_ONLY = new Set(["user-kernel"]);
