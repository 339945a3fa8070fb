#pragma once
// PNG heatmaps are drawn by reports/heatmap.py (numpy + matplotlib), run as a child process.
//
// The script is looked up, first hit wins:
//   1. $ATTNKIT_HEATMAP (a path to the script),
//   2. <directory of the attnkit executable>/heatmap.py  (the build tree: meson copies it next to
//      build/src/cli/attnkit),
//   3. <directory of the executable>/../share/attnkit/heatmap.py  (an installed, relocated tree),
//   4. ATTNKIT_DATADIR/heatmap.py, the install data dir compiled in (<prefix>/share/attnkit).
// The interpreter is $ATTNKIT_PYTHON, else /usr/bin/python3 (named explicitly: a python3 earlier
// on PATH may lack numpy or matplotlib).
#include <string>
#include <vector>

namespace attnkit::cli {

// Largest n_q or n_k drawn as a PNG: beyond it a heatmap has more cells than pixels and
// matplotlib needs seconds and GiBs. (Backend::kMaxWeights limits the .npy.)
inline constexpr long kMaxPngSide = 2048;

std::string find_heatmap_script();

// Runs the interpreter on the script with `args`. Throws attnkit::Error with the script's last
// stderr line when it fails, or when the interpreter cannot be started.
void run_heatmap(const std::vector<std::string>& args);

}  // namespace attnkit::cli
