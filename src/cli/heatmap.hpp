#pragma once
// PNG heatmaps are drawn by reports/heatmap.py (numpy + matplotlib), run as a child process.
//
// The script is found and run as python_script.hpp says (file heatmap.py, override
// $ATTNKIT_HEATMAP, interpreter $ATTNKIT_PYTHON else /usr/bin/python3).
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
